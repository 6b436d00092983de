"""The training loop on a real store: run folder, logs, plot, `load_encoder`; exact resume after SIGKILL;
SIGTERM saves and exits 0; non-finite losses; refused resumes; a failing disk while saving."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from _train import ROOT, babyfast, env, make_store, tiny

from babyfast.train import load_config, load_encoder, plot_run, train
from babyfast.train.checkpoint import list_checkpoints, load_checkpoint
from babyfast.train.metrics import read_metrics
from babyfast.train.models import VideoViT


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("train"))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_a_run_writes_config_logs_checkpoints_plot_and_an_encoder(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(ROOT / "configs" / "videomae_tiny_cpu.yaml",
                      tiny(store, out, "train.steps=6", "train.save_every=2", "train.keep=2"))
    result = train(cfg)
    assert result.step == 6 and result.stopped_by == "steps"
    assert load_config(out / "config.yaml") == cfg  # the resolved config, readable as a config
    assert [s for s, _ in list_checkpoints(out)] == [4, 6]  # keep=2 removed step 2
    assert result.checkpoint == out / "checkpoints" / "ckpt-00000006.pt"
    records = read_metrics(out)
    assert [r["step"] for r in records] == [2, 4, 6]
    for key in ("loss", "lr", "grad_norm", "clips_per_s", "input_tokens_per_s", "encoder_tokens_per_s", "mfu",
                "stall", "peak_memory_gb", "clips_seen", "hours_seen", "age_days_seen"):
        assert all(r[key] is not None for r in records), key
    r = records[-1]
    assert r["input_tokens_per_s"] == pytest.approx(4 * r["encoder_tokens_per_s"])  # 8 tubelets, 2 visible
    assert r["clips_seen"] == 12 and 0 <= r["stall"] <= 1 and 0 < r["mfu"] < 1
    assert 100 <= r["age_days_seen"] <= 300
    header = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert header["event"] == "start" and "peak_source" in header and header["input_tokens_per_clip"] == 8
    assert list((out / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 6 and summary["clips_seen"] == 12
    png = plot_run(out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    encoder, saved = load_encoder(out)
    assert isinstance(encoder, VideoViT) and not encoder.training and saved.model.embed_dim == 64
    ckpt = weights(result.checkpoint)
    assert torch.equal(encoder.blocks[1].mlp.fc2.weight, ckpt["encoder.blocks.1.mlp.fc2.weight"])
    video = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    assert encoder(video).shape == (1, 8, 64)


def _run_until_checkpoint_then_kill(args: list[str], ckpt: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "babyfast", "train", *args], env=env(), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_resume_after_sigkill_is_bitwise_identical(store: Path, tmp_path: Path) -> None:
    n = 160
    args = ["train.steps=%d" % n, "train.save_every=%d" % (n // 2), "train.log_every=20"]
    straight = babyfast("train", *tiny(store, tmp_path / "straight", *args))
    assert straight.returncode == 0, straight.stderr
    killed = tmp_path / "killed"
    _run_until_checkpoint_then_kill(tiny(store, killed, *args), killed / "checkpoints" / f"ckpt-{n // 2:08d}.pt")
    assert not (killed / "checkpoints" / f"ckpt-{n:08d}.pt").exists(), "the kill came after the run ended"
    resumed = babyfast("train", *tiny(store, killed, *args))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {killed / 'checkpoints' / f'ckpt-{n // 2:08d}.pt'} at step {n // 2}" in resumed.stderr
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / f"ckpt-{n:08d}.pt")
    b = load_checkpoint(killed / "checkpoints" / f"ckpt-{n:08d}.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), "weights differ after resume"
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert a["loader"] == b["loader"] and a["seen"] == b["seen"]
    # the log of the killed run holds each step once, however often it was written
    assert [r["step"] for r in read_metrics(killed)] == list(range(20, n + 1, 20))


def test_sigterm_saves_and_exits_zero_and_the_same_command_resumes(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = tiny(store, out, "train.steps=100000", "train.save_every=100000", "train.log_every=1")
    proc = subprocess.Popen([sys.executable, "-m", "babyfast", "train", *args], env=env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or len(read_metrics(out)) < 3:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "SIGTERM: saving a checkpoint" in stderr and "(sigterm)" in stdout
    [(step, path)] = list_checkpoints(out)
    assert 3 <= step < 100000 and json.loads((out / "summary.json").read_text())["stopped_by"] == "sigterm"
    again = babyfast("train", *args[:-3], f"train.steps={step + 2}", "train.save_every=100000", "train.log_every=1")
    assert again.returncode == 0, again.stderr
    assert f"at step {step}" in again.stderr and [s for s, _ in list_checkpoints(out)][-1] == step + 2


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = babyfast("train", *tiny(store, out, "train.steps=10", "train.save_every=1", "optim.lr=1e30", "optim.min_lr=0"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "step 2: the loss is nan" in r.stderr and "last good checkpoint is" in r.stderr
    assert [s for s, _ in list_checkpoints(out)] == [1]
    assert all(torch.isfinite(w).all() for w in weights(out / "checkpoints" / "ckpt-00000001.pt").values())


def test_skip_nonfinite_skips_that_many_steps_without_updating(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = babyfast("train", *tiny(store, out, "train.steps=10", "train.save_every=1", "optim.lr=1e30", "optim.min_lr=0",
                                "train.skip_nonfinite=2"))
    assert r.returncode == 1
    assert r.stderr.count("skipped,") == 2 and "step 4: the loss is nan" in r.stderr and "(2 allowed, 3 seen)" in r.stderr
    kept = list_checkpoints(out)
    assert [s for s, _ in kept] == [1, 2, 3]
    first, last = weights(kept[0][1]), weights(kept[-1][1])
    assert all(torch.equal(first[k], last[k]) for k in first), "a skipped step changed the weights"
    assert load_checkpoint(kept[-1][1])["nonfinite_skipped"] == 2


def test_resume_with_another_model_or_objective_is_refused(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(load_config(None, tiny(store, out, "train.steps=2")))
    r = babyfast("train", *tiny(store, out, "train.steps=4", "model.depth=3", "videomae.mask_ratio=0.5"))
    assert r.returncode == 1
    assert "holds a run of another model or objective" in r.stderr
    assert "model.depth: saved 2, now 3" in r.stderr and "videomae.mask_ratio: saved 0.75, now 0.5" in r.stderr
    assert [s for s, _ in list_checkpoints(out)] == [2]


def test_a_failing_disk_while_saving_keeps_the_previous_checkpoint(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(load_config(None, tiny(store, out, "train.steps=2", "train.save_every=2")))
    ckpt = out / "checkpoints" / "ckpt-00000002.pt"
    before = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    limit = ckpt.stat().st_size // 2

    def small_files() -> None:  # the kernel refuses writes past `limit` bytes (EFBIG), as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = babyfast("train", *tiny(store, out, "train.steps=4", "train.save_every=2"), preexec_fn=small_files)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"could not save checkpoint {out / 'checkpoints' / 'ckpt-00000004.pt'}: File too large" in r.stderr
    assert f"{ckpt}, is intact" in r.stderr
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["ckpt-00000002.pt"]  # no temporary file left
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == before
    assert load_checkpoint(ckpt)["step"] == 2


def test_plot_and_load_encoder_name_what_is_missing(tmp_path: Path) -> None:
    r = babyfast("plot", str(tmp_path), timeout=120)
    assert r.returncode == 1 and "metrics.jsonl does not exist" in r.stderr
    with pytest.raises(RuntimeError, match="holds no checkpoint"):
        load_encoder(tmp_path)
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"x.pt cannot be read"):
        load_encoder(tmp_path / "x.pt")


def test_resolved_config_is_yaml(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(load_config(None, tiny(store, out, "train.steps=1")))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["embed_dim"] == 64 and saved["data"]["store"] == str(store)
    assert os.access(out / "config.yaml", os.R_OK)


def test_gradient_accumulation_equals_the_whole_batch(store: Path, tmp_path: Path) -> None:
    # two micro-batches of one clip read the same clips, with the same masks, as one batch of two
    whole = train(load_config(None, tiny(store, tmp_path / "whole", "train.steps=1", "data.batch_size=2")))
    split = train(load_config(None, tiny(store, tmp_path / "split", "train.steps=1", "data.batch_size=1",
                                         "optim.accum_steps=2")))
    a, b = weights(whole.checkpoint), weights(split.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)
    assert split.summary["clips_seen"] == whole.summary["clips_seen"] == 2


def test_dataloader_workers_feed_the_same_batches_as_threads(store: Path, tmp_path: Path) -> None:
    # 12 steps cross an epoch boundary (19 clips per epoch, 9 batches of 2)
    args = ("train.steps=12", "train.save_every=12")
    threads = train(load_config(None, tiny(store, tmp_path / "threads", *args)))
    workers = train(load_config(None, tiny(store, tmp_path / "workers", *args, "data.workers=2")))
    a, b = load_checkpoint(threads.checkpoint), load_checkpoint(workers.checkpoint)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["loader"] == b["loader"] and a["loader"][0]["epoch"] == 1
