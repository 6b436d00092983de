"""ClipLoader's contract with other trainers: epochs in any DataLoader, StatefulDataLoader resume, states
that count clips and are checked, resume on another number of ranks, the typed batch, the decode device,
several stores with weights, filters, utterance anchors, start jitter."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from _media import make_video

import babyfast.store  # noqa: F401
from babyfast.loader.augment import Augment
from babyfast.loader.batch import ClipBatch
from babyfast.loader.clip_loader import ClipLoader
from babyfast.store.ingest import ingest

NONE = Augment.none()


def _ingest(root: Path, lengths: list[int], ages: str, utterances: str = "") -> Path:
    src = root / "src"
    src.mkdir(parents=True)
    for i, n in enumerate(lengths):
        make_video(src / f"v{i}.mp4", frames=n, w=64, h=48, rate=30)
    (src / "ages.csv").write_text("video,subject,age_days\n" + ages)
    if utterances:
        (src / "utterances.csv").write_text("video,start,end,text\n" + utterances)
    r = ingest(src, root / "store", fps=10, size=32, gop=4, codec="raw", shard_chunks=2, progress=False)
    assert r.ok, r.problems
    return root / "store"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return _ingest(tmp_path_factory.mktemp("api"), [120, 90, 150],
                   "v0,S1,300\nv1,S1,100\nv2,S2,200\n",
                   "v0,0.0,0.5,look at the ball!\nv0,2.0,2.5,a duck\nv2,3.0,3.9,where is the cup\n")


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> Path:
    return _ingest(tmp_path_factory.mktemp("api_other"), [80, 80], "v0,S3,500\nv1,S3,510\n")


def keys(batches) -> list[tuple[str, int]]:
    return [(v, int(s)) for b in batches for v, s in zip(b.video_id, b.start)]


def loader(store: Path, **kw) -> ClipLoader:
    return ClipLoader(store, **{"clip_len": 4, "batch_size": 2, "augment": NONE, "seed": 5, **kw})


# ------------------------------------------------------------------------------------------- epochs
@pytest.mark.parametrize("workers, persistent", [(0, False), (2, False), (2, True)])
def test_each_dataloader_iteration_is_the_next_epoch(store: Path, workers: int, persistent: bool) -> None:
    reference = loader(store)
    epochs = [keys(reference) for _ in range(3)]  # plain iteration: epochs 0, 1, 2, each a new order
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    dl = torch.utils.data.DataLoader(loader(store), batch_size=None, num_workers=workers,
                                     persistent_workers=persistent)
    assert [keys(dl) for _ in range(3)] == epochs  # no set_epoch call anywhere
    assert {b.epoch for b in dl} == {3}


def test_a_peek_does_not_move_the_start_and_the_main_state_is_refused_after_workers(store: Path) -> None:
    lo = loader(store)
    first = next(iter(lo))  # peek at the shapes
    assert first.batch_index == 0
    assert lo.state_dict()["samples"] == 2  # this process's own progress
    dl = torch.utils.data.DataLoader(lo, batch_size=None, num_workers=2)
    batches = list(dl)
    assert batches[0].batch_index == 0 and len(batches) == len(lo)
    with pytest.raises(RuntimeError, match="DataLoader workers made the batches"):
        lo.state_dict()
    state = lo.state_from_batch(batches[3])
    assert (state["epoch"], state["samples"]) == (0, 8)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resumes_exactly(store: Path, workers: int) -> None:
    full = keys(loader(store))
    dl = StatefulDataLoader(loader(store), batch_size=None, num_workers=workers)
    it = iter(dl)
    head = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(dl.state_dict()))  # what a checkpoint would hold
    del it, dl
    resumed = StatefulDataLoader(loader(store), batch_size=None, num_workers=workers)
    resumed.load_state_dict(state)
    assert keys(head) + keys(resumed) == full


def test_state_counts_clips_and_round_trips(store: Path) -> None:
    lo = loader(store)
    it = iter(lo)
    for _ in range(3):
        batch = next(it)
    state = lo.state_dict()
    assert state == lo.state_from_batch(batch)
    assert (state["epoch"], state["consumed"], state["samples"], state["world_size"]) == (0, 0, 6, 1)
    rest = keys(it)
    again = loader(store)
    again.load_state_dict(json.loads(json.dumps(state)))
    assert keys(again) == rest
    assert again.epoch == 1


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("epoch"), r"lacks \['epoch'\]"),
    (lambda s: s.pop("settings"), r"lacks \['settings'\]"),
    (lambda s: s.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda s: s.update(format=1), r"format 1"),
    (lambda s: s.update(epoch=-1), r"epoch = -1 is out of range"),
    (lambda s: s.update(samples="4"), r"'samples' must be an int, got str"),
    (lambda s: s.update(samples=3), r"samples = 3 is not a multiple of batch_size 2"),
    (lambda s: s.update(samples=10**6), r"samples = 1000000 is past the 28 clips of a rank's epoch"),
    (lambda s: s.update(consumed=10**6), r"consumed = 1000000 is past the epoch"),
    (lambda s: s.update(rank=3), r"rank = 3 is out of range"),
    (lambda s: s["settings"].update(seed=6), r"other settings: seed: saved 6, now 5"),
    (lambda s: s.update(worker=0), r"some of \['worker', 'num_workers', 'worker_batches'\] but not all"),
])
def test_load_state_dict_checks_every_key_and_range(store: Path, change, message) -> None:
    state = loader(store).state_dict()
    change(state)
    with pytest.raises(ValueError, match=message):
        loader(store).load_state_dict(state)
    with pytest.raises(ValueError, match="must be a dict"):
        loader(store).load_state_dict([1, 2])


# ------------------------------------------------------------------------------------ world sizes
def test_resume_from_three_ranks_on_two_reads_every_remaining_clip_once(store: Path) -> None:
    read, states = [], []
    for rank in range(3):
        lo = loader(store, rank=rank, world_size=3, batch_size=1)
        it = iter(lo)
        read += keys([next(it) for _ in range(2)])
        states.append(lo.state_dict())
    assert len({s["samples"] for s in states}) == 1  # ranks step together
    for rank in range(2):
        lo = loader(store, rank=rank, world_size=2, batch_size=1)
        lo.load_state_dict(states[0])
        read += keys(lo)
    n = loader(store).plan.num_candidates
    assert len(read) == len(set(read))  # nothing twice
    assert n - len(read) < 2  # and everything but the drop-last tail of the two ranks


# ---------------------------------------------------------------------------------------- batches
def test_clip_batch_is_typed_pins_and_moves(store: Path) -> None:
    batch = next(iter(loader(store, layout="TCHW")))
    assert isinstance(batch, ClipBatch) and batch.video.shape == (2, 4, 3, 32, 32)
    assert batch["video"] is batch.video
    with pytest.raises(KeyError, match="no field 'extra'"):
        batch["extra"]
    thwc = next(iter(loader(store)))
    assert torch.equal(thwc.video.permute(0, 1, 4, 2, 3), batch.video)
    dl = torch.utils.data.DataLoader(loader(store), batch_size=None, num_workers=0)
    assert isinstance(next(iter(dl)), ClipBatch)
    assert batch.to("cpu").video is batch.video or torch.equal(batch.to("cpu").video, batch.video)
    if torch.cuda.is_available():
        assert batch.pin_memory().video.is_pinned()


def test_contradictory_devices_are_refused(store: Path) -> None:
    with pytest.raises(ValueError, match="decode_device='cuda' delivers nothing to device='cpu'"):
        loader(store, decode_device="cuda")
    with pytest.raises(ValueError, match="decode_device must be one of"):
        loader(store, decode_device="gpu")
    with pytest.raises(ValueError, match="layout must be one of"):
        loader(store, layout="NCTHW")
    with pytest.raises(ValueError, match="frame_step must be an int >= 1"):
        loader(store, frame_step=0)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="decoder='pyav' decodes on the CPU"):
            loader(store, device="cuda", decode_device="cuda", decoder="pyav")
    assert loader(store).decode_device == "cpu"


# --------------------------------------------------------------------------------- data selection
def test_filters_select_in_the_plan(store: Path) -> None:
    only = loader(store, subjects=["S1"])
    assert {v for v, _ in keys(only)} == {"v0", "v1"} and only.skipped == []
    held_out = loader(store, exclude_subjects=["S1"])
    assert {v for v, _ in keys(held_out)} == {"v2"}
    young = loader(store, age_days=(100, 250))
    assert {v for v, _ in keys(young)} == {"v1", "v2"}
    # excluded videos have no candidate at all: the epoch is smaller, nothing is skipped
    assert only.plan.num_candidates < loader(store).plan.num_candidates
    with pytest.raises(ValueError, match="no video is selected"):
        loader(store, subjects=["S9"])
    with pytest.raises(ValueError, match="both selected and excluded"):
        loader(store, subjects=["S1"], exclude_subjects=["S1"])
    with pytest.raises(ValueError, match="age_days must be"):
        loader(store, age_days=(300, 100))


def test_several_stores_are_read_together_and_mixed_by_weights(store: Path, other: Path) -> None:
    both = loader({"a": store, "b": other})
    got = [(int(s), v, int(t)) for b in both for s, v, t in zip(b.store, b.video_id, b.start)]
    n_a, n_b = loader(store).plan.num_candidates, loader(other).plan.num_candidates
    assert len(got) == len(set(got)) == (n_a + n_b) // 2 * 2  # one epoch over both, whole batches
    counts = Counter(s for s, _, _ in got)
    assert n_a - 1 <= counts[0] <= n_a and n_b - 1 <= counts[1] <= n_b
    mixed = loader({"a": store, "b": other}, weights={"a": 1, "b": 3}, batch_size=4)
    counts = Counter(int(s) for b in mixed for s in b.store)
    total = sum(counts.values())
    assert abs(counts[1] / total - 0.75) < 0.06, counts
    first = keys(loader({"a": store, "b": other}, weights=[1, 3], batch_size=4))
    assert first == keys(loader({"a": store, "b": other}, weights=[1, 3], batch_size=4))  # deterministic
    it = iter(mixed)
    head = [next(it) for _ in range(2)]
    state = mixed.state_dict()
    again = loader({"a": store, "b": other}, weights={"a": 1, "b": 3}, batch_size=4)
    again.load_state_dict(state)
    assert keys(again) == keys(it) and head[0].epoch == 1
    with pytest.raises(ValueError, match="weights mix stores in a shuffled epoch"):
        loader({"a": store, "b": other}, weights=[1, 1], order="age")
    with pytest.raises(ValueError, match="store names must differ"):
        loader([store, store])


def test_utterance_anchored_clips_overlap_their_utterance(store: Path) -> None:
    lo = loader(store, anchor="utterance", batch_size=1)
    batches = list(lo)
    assert batches and all(b.anchor_text[0] is not None for b in batches)
    texts = Counter(b.anchor_text[0] for b in batches)
    assert set(texts) == {"look at the ball!", "a duck", "where is the cup"}
    for b in batches:
        t0, t1 = float(b.timestamps[0, 0]), float(b.timestamps[0, -1]) + 0.1
        assert any(u[2] == b.anchor_text[0] and u[0] < t1 and u[1] > t0 for u in b.utterances[0])
    assert len(set(keys(batches))) == len(batches)  # exactly once per epoch
    state = lo.state_from_batch(batches[1])
    again = loader(store, anchor="utterance", batch_size=1)
    again.load_state_dict(state)
    assert keys(again) == keys(batches[2:])
    with pytest.raises(ValueError, match="anchor must be"):
        loader(store, anchor="word")


def test_start_jitter_is_seeded_stays_in_the_gop_and_gives_more_distinct_clips(store: Path) -> None:
    plain = keys(loader(store))
    jittered = [keys(loader(store, jitter_starts=True)) for _ in range(2)]
    assert jittered[0] == jittered[1]  # a pure function of the seed
    assert [v for v, _ in jittered[0]] == [v for v, _ in plain]
    assert all(0 <= s - p < 4 for (_, s), (_, p) in zip(jittered[0], plain))
    assert any(s % 4 for _, s in jittered[0])
    lo = loader(store, jitter_starts=True)
    epochs = {k for _ in range(4) for k in keys(lo)}
    assert len(epochs) > len(set(plain))
    frames = {v: n for v, n in zip(["v0", "v1", "v2"], [40, 30, 50])}  # 10 fps
    assert all(s + 4 <= frames[v] for v, s in epochs)
