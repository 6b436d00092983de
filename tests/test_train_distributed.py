"""torchrun on the CPU (gloo): the first DDP step equals one process on the concatenated batch, only rank 0
writes, and FSDP2 trains the same weights as DDP."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _train import ROOT, env, make_store, tiny

from babyfast.train.checkpoint import load_checkpoint
from babyfast.train.config import load_config, validate
from babyfast.train.data import make_loader
from babyfast.train.loop import build_objective
from babyfast.train.optim import build_optimizer, learning_rate


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("ddp"))


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "babyfast", "train", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def assert_close_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


@pytest.fixture(scope="module")
def ddp_run(store: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp_run") / "run"
    r = torchrun(*tiny(store, out, "train.steps=2", "train.save_every=1", "train.log_every=1"))
    assert r.stdout.count(f"{out}: step 2") == 1, r.stdout  # rank 0 reports for the run
    return out


def test_the_data_config_window_reaches_the_loader_plan(store: Path, tmp_path: Path) -> None:
    cfg = validate(load_config(None, tiny(store, tmp_path / "w", "data.order=age", "data.window=3")))
    loader = make_loader(cfg.data, cfg.train.seed, 0, 1, torch.device("cpu"))
    assert loader.plan.order == "age" and loader.plan.window == 3


def test_first_ddp_step_equals_one_process_on_the_concatenated_batch(store: Path, ddp_run: Path, tmp_path: Path) -> None:
    cfg = validate(load_config(None, tiny(store, tmp_path / "single", "train.steps=2")))
    cpu = torch.device("cpu")
    firsts = [next(iter(make_loader(cfg.data, cfg.train.seed, rank, 2, cpu))) for rank in (0, 1)]
    assert not set(firsts[0]["position"].tolist()) & set(firsts[1]["position"].tolist())  # disjoint clips
    video = torch.cat([b["video"] for b in firsts])
    torch.manual_seed(cfg.train.seed)
    objective = build_objective(cfg)
    optimizer = build_optimizer(objective, cfg.optim, cpu, objective.no_weight_decay())
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(0, cfg.train.steps, cfg.optim, global_batch=4)
    objective({"video": video}, step=0, offset=0, total=4).loss.backward()
    torch.nn.utils.clip_grad_norm_(objective.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    saved = load_checkpoint(ddp_run / "checkpoints" / "ckpt-00000001.pt")
    assert_close_weights(saved["model"], objective.state_dict())
    assert len(saved["loader"]) == 2 and [s["rank"] for s in saved["loader"]] == [0, 1]
    lines = [json.loads(x) for x in (ddp_run / "metrics.jsonl").read_text().splitlines()]
    assert [x.get("event") for x in lines].count("start") == 1 and [x["step"] for x in lines[1:]] == [1, 2]
    assert lines[0]["world_size"] == 2 and lines[0]["global_batch"] == 4


def test_fsdp2_trains_the_same_weights_as_ddp(store: Path, ddp_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "fsdp"
    torchrun(*tiny(store, out, "train.steps=2", "train.save_every=1", "train.log_every=1", "train.distributed=fsdp"))
    assert_close_weights(load_checkpoint(out / "checkpoints" / "ckpt-00000002.pt")["model"],
                         load_checkpoint(ddp_run / "checkpoints" / "ckpt-00000002.pt")["model"])
