"""The video–utterance contrastive baseline: InfoNCE against a direct computation, the vocabulary, pairs
from utterance-anchored clips, the shuffled-pairs control, learning, torchrun with gathered negatives,
exact resume, and a checkpoint that scores words against clips on its own."""
from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from _media import make_video
from _train import ROOT, babyfast, env

from babyfast.store.ingest import ingest
from babyfast.train import load_config, load_objective, train
from babyfast.train.build import build_objective
from babyfast.train.checkpoint import load_checkpoint
from babyfast.train.data import make_loader
from babyfast.train.objectives import Contrastive, symmetric_info_nce
from babyfast.train.optim import build_optimizer, learning_rate
from babyfast.train.vocab import PAD, UNK, Vocabulary, build_vocabulary, words

WORDS = ["ball", "duck", "cup", "car", "shoe", "book"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Three recordings with an utterance every second that names a toy (6 toys, 30 utterances)."""
    root = tmp_path_factory.mktemp("contrastive")
    src = root / "src"
    src.mkdir()
    rows = []
    for i in range(3):
        make_video(src / f"v{i}.mp4", frames=100, w=64, h=48, rate=10)
        for k in range(10):
            word = WORDS[(i * 10 + k) % len(WORDS)]
            rows.append(f"v{i},{k + 0.1:.1f},{k + 0.6:.1f},look at the {word}!")
    (src / "utterances.csv").write_text("video,start,end,text\n" + "\n".join(rows) + "\n")
    (src / "ages.csv").write_text("video,subject,age_days\nv0,S1,300\nv1,S1,310\nv2,S2,200\n")
    assert ingest(src, root / "store", fps=10, size=32, gop=4, codec="raw", shard_chunks=2, progress=False).ok
    return root / "store"


def tiny(store: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.store={store}", "objective=contrastive", "data.anchor=utterance", "data.clip_len=4",
            "data.size=32", "data.batch_size=4", "data.threads=1", "model.embed_dim=64", "model.depth=2",
            "model.num_heads=2", "model.attention_backend=sdpa", "model.patchify_backend=torch",
            "contrastive.embed_dim=32", "contrastive.text_dim=32", "train.device=cpu", "train.progress=false",
            "train.log_every=2", "train.threads=1", f"train.out={out}", *extra]


def test_info_nce_equals_a_direct_computation_with_duplicate_texts() -> None:
    g = torch.Generator().manual_seed(0)
    n, e = 6, 5
    v = torch.nn.functional.normalize(torch.randn(n, e, generator=g, dtype=torch.float64), dim=1)
    t = torch.nn.functional.normalize(torch.randn(n, e, generator=g, dtype=torch.float64), dim=1)
    keys = torch.tensor([7, 3, 7, 9, 4, 3])  # pairs 0 and 2 share a text, and 1 and 5
    valid = torch.tensor([True, True, True, True, False, True])  # pair 4 has no utterance
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    got = symmetric_info_nce(v, t, scale, keys, valid)
    s = (scale * v @ t.T).numpy()
    total, rows = 0.0, 0
    for i in range(n):
        if not valid[i]:
            continue
        # candidates: the own pair, and every valid pair with another text
        cols = [j for j in range(n) if valid[j] and (j == i or keys[j] != keys[i])]
        v2t = -s[i, i] + math.log(sum(math.exp(s[i, j]) for j in cols))
        t2v = -s[i, i] + math.log(sum(math.exp(s[j, i]) for j in cols))
        total += 0.5 * (v2t + t2v)
        rows += 1
    assert got.item() == pytest.approx(total / rows, rel=1e-6)
    assert symmetric_info_nce(v, t, scale, keys, torch.zeros(n, dtype=torch.bool)).item() == 0.0


def test_vocabulary_counts_unknowns_and_is_deterministic(store: Path, tmp_path: Path) -> None:
    texts = ["Look at the BALL!", "where's the ball", "a duck", "look, a cup"]
    assert words("Where's the ball?") == ["where's", "the", "ball"]
    v = build_vocabulary(texts, min_count=2)
    assert v.itos == (PAD, UNK, "a", "ball", "look", "the")  # seen twice each; by count, then alphabetical
    assert build_vocabulary(texts + ["the the"], min_count=2).itos[2] == "the"
    assert v.ids("the duck ball") == [5, 1, 3]
    ids, mask = v.encode(["the ball", None, "zebra"])
    assert ids.tolist() == [[5, 3], [1, 0], [1, 0]] and mask.tolist() == [[True, True], [True, False], [True, False]]
    assert build_vocabulary(list(reversed(texts)), min_count=2) == v
    assert Vocabulary.load(v.save(tmp_path / "v.json")) == v
    with pytest.raises(ValueError, match="not a babyfast vocabulary"):
        Vocabulary.from_json("[]")
    r = babyfast("vocab", str(store), "--min-count", "3", "--out", str(tmp_path / "store.json"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "30 utterances" in r.stdout and "most frequent: at, look, the" in r.stdout
    saved = Vocabulary.load(tmp_path / "store.json")
    assert set(saved.itos[2:]) == {"at", "look", "the", *WORDS}


def test_pairs_are_the_anchor_utterances_and_the_shuffled_control_breaks_only_them(store: Path, tmp_path: Path) -> None:
    cfg = load_config(None, tiny(store, tmp_path / "x"))
    loader = make_loader(cfg.data, 0, 0, 1, torch.device("cpu"))
    vocab = build_vocabulary([t for b in loader for t in b.anchor_text])
    real = Contrastive(build_objective(cfg, vocab).encoder, vocab, embed_dim=8, text_dim=8)
    shuffled = Contrastive(real.encoder, vocab, embed_dim=8, text_dim=8, shuffle_pairs=True)
    pairs, control, anchors = [], [], []
    for batch in loader:
        assert all(t is not None for t in batch.anchor_text)
        anchors += batch.anchor_text
        pairs += real.pair_texts(batch, loader)
        control += shuffled.pair_texts(batch, loader)
        mine, other = real.inputs(batch, loader), shuffled.inputs(batch, loader)
        assert mine["valid"].all() and mine["video"] is other["video"] is batch.video  # the clips are untouched
        assert shuffled.pair_texts(batch, loader) == control[-len(batch):]  # seeded
    assert pairs == anchors  # a clip's pair is the utterance it was drawn around
    assert sum(a != b for a, b in zip(pairs, control)) > len(pairs) // 2  # the pairing is broken
    # each utterance is used as often: the control permutes the pairing within the epoch (up to the
    # positions drop_last left out of it)
    dropped = loader.plan.num_candidates - len(pairs)
    assert sum((Counter(pairs) - Counter(control)).values()) <= dropped


def test_loss_falls_when_overfitting_a_few_batches(store: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = load_config(None, tiny(store, tmp_path / "x"))
    loader = make_loader(cfg.data, 0, 0, 1, torch.device("cpu"))
    batches = [b for _, b in zip(range(2), loader)]
    vocab = build_vocabulary([t for b in batches for t in b.anchor_text])
    objective = build_objective(cfg, vocab)
    opt = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    inputs = [objective.inputs(b, loader) for b in batches]
    losses = []
    for step in range(40):
        out = objective(inputs[step % 2], step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), (losses[:4], losses[-4:])


def test_torchrun_with_gathered_negatives_equals_one_process(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "babyfast",
           "train", *tiny(store, out, "train.steps=2", "train.save_every=1", "data.batch_size=2")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = load_config(None, tiny(store, tmp_path / "single", "train.steps=2", "data.batch_size=2"))
    cpu = torch.device("cpu")
    loaders = [make_loader(cfg.data, 0, rank, 2, cpu) for rank in (0, 1)]
    firsts = [next(iter(lo)) for lo in loaders]
    saved = load_checkpoint(out / "checkpoints" / "ckpt-00000001.pt")
    vocab = Vocabulary.from_json(saved["vocabulary"])
    torch.manual_seed(cfg.train.seed)
    objective = build_objective(cfg, vocab)
    optimizer = build_optimizer(objective, cfg.optim, cpu, objective.no_weight_decay())
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(0, cfg.train.steps, cfg.optim, global_batch=4)
    parts = [objective.inputs(b, lo) for b, lo in zip(firsts, loaders)]
    width = max(p["text_ids"].shape[1] for p in parts)  # the ranks' texts, padded to one length
    joined = {"video": torch.cat([p["video"] for p in parts]), "valid": torch.cat([p["valid"] for p in parts]),
              **{k: torch.cat([torch.nn.functional.pad(p[k], (0, width - p[k].shape[1])) for p in parts])
                 for k in ("text_ids", "text_mask")}}
    objective(joined, step=0).loss.backward()
    torch.nn.utils.clip_grad_norm_(objective.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    for k, w in objective.state_dict().items():
        torch.testing.assert_close(saved["model"][k], w, atol=1e-6, rtol=1e-5, msg=k)


def test_resume_is_exact_and_the_checkpoint_scores_words_against_clips(store: Path, tmp_path: Path) -> None:
    straight = train(load_config(None, tiny(store, tmp_path / "a", "train.steps=6", "train.save_every=3")))
    part = tmp_path / "b"
    train(load_config(None, tiny(store, part, "train.steps=6", "train.save_every=3")))
    (part / "checkpoints" / "ckpt-00000006.pt").unlink()  # as if killed after step 3
    resumed = train(load_config(None, tiny(store, part, "train.steps=6", "train.save_every=3")))
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["vocabulary"] == b["vocabulary"] and (part / "vocab.json").exists()
    (part / "vocab.json").unlink()  # the checkpoint alone is enough
    objective, cfg = load_objective(part)
    assert cfg.objective == "contrastive" and "duck" in objective.vocabulary.itos
    with torch.no_grad():
        w = objective.embed_text(*objective.vocabulary.encode(["ball", "duck"]))
        v = objective.embed_video(torch.randint(0, 256, (3, 4, 32, 32, 3), dtype=torch.uint8))
    assert (w @ v.T).shape == (2, 3) and torch.allclose(w.norm(dim=1), torch.ones(2))


def test_joint_objective_trains_both_losses(store: Path, tmp_path: Path) -> None:
    result = train(load_config(None, tiny(store, tmp_path / "joint", "objective=videomae_contrastive",
                                          "videomae.mask_ratio=0.75", "videomae.decoder_dim=32",
                                          "videomae.decoder_depth=1", "train.steps=2")))
    state = load_checkpoint(result.checkpoint)
    assert any(k.startswith("mae.decoder.") for k in state["model"]) and any(k.startswith("contrastive.text.")
                                                                            for k in state["model"])
    assert not any(k.startswith(("mae.encoder.", "contrastive.encoder.")) for k in state["model"])  # stored once
    assert result.summary["final_loss"] > 0
