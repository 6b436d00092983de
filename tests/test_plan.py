"""The clip planner: exactly-once epochs over ranks x workers, determinism, orders, resume, errors.

Every expectation comes from an independent reference written here in plain Python: brute-force
enumeration of the candidates (``range(0, frames - clip_len + 1, stride)``), the age layout by ``sorted``,
and the age_mix schedule by iteration (the planner computes it in closed form).
"""
from __future__ import annotations

import math
import pickle
import threading

import numpy as np
import pytest

from babyfast.loader.plan import ClipPlan, RankBatches, worker_batch_indices

ORDERS = ("shuffle", "age", "age_mix")
WORLDS = (1, 2, 3, 8)


# ---------------------------------------------------------------------------------------------------------
# independent references
def brute_candidates(frames, clip_len: int, stride: int) -> list[tuple[int, int]]:
    return [(v, s) for v, f in enumerate(frames) for s in range(0, int(f) - clip_len + 1, stride)]


def age_layout(frames, ages, clip_len: int, stride: int) -> list[tuple[int, int]]:
    """Candidates youngest video first, NaN ages last, ties by video index, then by start frame."""

    def key(v: int):
        a = float(ages[v])
        return (math.isnan(a), 0.0 if math.isnan(a) else a, v)

    order = sorted(range(len(frames)), key=key)
    return [(v, s) for v in order for s in range(0, int(frames[v]) - clip_len + 1, stride)]


def age_windows(n: int, window: int) -> list[tuple[int, int]]:
    return [(b, min(b + window, n)) for b in range(0, n, window)]


def age_mix_windows(n: int, window: int) -> list[tuple[int, int]]:
    """Sizes W, 2W, 4W, ... while the following window still fits whole; the last one runs to n."""
    windows, begin, size = [], 0, window
    while begin + size + 2 * size <= n:
        windows.append((begin, begin + size))
        begin, size = begin + size, size * 2
    windows.append((begin, n))
    return windows


class CandidateIds:
    """Dense ids 0..N-1 of candidates, from brute-force per-video counts, to check big epochs with numpy."""

    def __init__(self, frames, clip_len: int, stride: int) -> None:
        self.counts = np.array([len(range(0, int(f) - clip_len + 1, stride)) for f in frames], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.stride = stride
        self.n = int(self.offsets[-1])

    def __call__(self, videos: np.ndarray, starts: np.ndarray) -> np.ndarray:
        assert (starts % self.stride == 0).all(), "a start frame off the stride grid"
        k = starts // self.stride
        assert (k >= 0).all() and (k < self.counts[videos]).all(), "a start frame past the video's last candidate"
        return self.offsets[videos] + k


def frames_for_counts(counts, clip_len: int, stride: int) -> np.ndarray:
    """Frame counts that give exactly `counts` candidates per video (0 -> a video shorter than a clip)."""
    return np.array([clip_len + (c - 1) * stride if c > 0 else clip_len - 1 for c in counts], dtype=np.int64)


def make_ages(rng: np.random.Generator, v: int) -> np.ndarray:
    ages = rng.choice([30.0, 95.5, 180.0, 181.0, 400.0, 700.0], size=v)  # many ties
    ages[rng.random(v) < 0.15] = np.nan
    return ages


@pytest.fixture(scope="module")
def corpus():
    """60 videos, some shorter than a clip, ages with ties and unknowns; N not divisible by 3 or 8."""
    rng = np.random.default_rng(1234)
    frames = rng.integers(0, 400, size=60)
    frames[[3, 17]] = [15, 0]
    ages = make_ages(rng, 60)
    clip_len, stride = 16, 8
    while len(brute_candidates(frames, clip_len, stride)) % 24 in (0, 3, 6, 8, 9, 12, 15, 16, 18, 21):
        frames[0] += stride  # keep the drop/pad tails of worlds 3 and 8 non-empty
    return frames, ages, clip_len, stride


def full_epoch(plan: ClipPlan, epoch: int) -> list[tuple[int, int]]:
    videos, starts = plan.plan(epoch)
    return list(zip(videos.tolist(), starts.tolist()))


# ---------------------------------------------------------------------------------------------------------
# candidates and exactly-once
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("clip_len,stride", [(16, 16), (16, 8), (8, 20), (1, 1), (30, 7)])
def test_one_epoch_is_every_candidate_once(order, clip_len, stride):
    rng = np.random.default_rng(clip_len * 100 + stride)
    frames = rng.integers(0, 200, size=25)
    frames[0] = 200  # at least one candidate for every clip_len here
    ages = make_ages(rng, 25)
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=5, window=7)
    expected = brute_candidates(frames, clip_len, stride)
    assert plan.num_candidates == len(expected)
    assert plan.per_consumer(1) == len(expected)
    for epoch in (0, 1, 17):
        got = full_epoch(plan, epoch)
        assert sorted(got) == sorted(expected)
        assert got != expected or len(expected) < 3  # not the enumeration order


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("world", WORLDS)
def test_drop_last_splits_an_epoch_without_overlap(corpus, order, world):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=11, window=13)
    expected = set(brute_candidates(frames, clip_len, stride))
    n = len(expected)
    share = plan.per_consumer(world, drop_last=True)
    assert share == n // world
    seen: list[tuple[int, int]] = []
    for r in range(world):
        videos, starts = plan.plan(3, r, world, drop_last=True)
        assert len(videos) == share
        seen += zip(videos.tolist(), starts.tolist())
        # consumer r reads global positions r, r + world, ...
        assert [plan.candidate(3, r + j * world) for j in range(share)] == list(zip(videos.tolist(), starts.tolist()))
    assert len(seen) == len(set(seen)) == n - n % world
    dropped = expected - set(seen)
    assert dropped == {plan.candidate(3, p) for p in range(n - n % world, n)}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("world", WORLDS)
def test_pad_reads_everything_and_wraps_to_the_epoch_start(corpus, order, world):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=11, window=13)
    expected = brute_candidates(frames, clip_len, stride)
    n = len(expected)
    share = plan.per_consumer(world, drop_last=False)
    assert share == -(-n // world)
    seen: list[tuple[int, int]] = []
    for r in range(world):
        videos, starts = plan.plan(3, r, world, drop_last=False)
        got = list(zip(videos.tolist(), starts.tolist()))
        assert got == [plan.candidate(3, (r + j * world) % n) for j in range(share)]
        seen += got
    extra = share * world - n
    counts: dict[tuple[int, int], int] = {}
    for c in seen:
        counts[c] = counts.get(c, 0) + 1
    assert set(counts) == set(expected)
    twice = sorted(c for c, k in counts.items() if k == 2)
    assert max(counts.values()) <= 2 and len(twice) == extra
    assert twice == sorted(plan.candidate(3, p) for p in range(extra))


@pytest.mark.parametrize("order", ORDERS)
def test_more_consumers_than_candidates(order):
    plan = ClipPlan([5, 6], [2.0, 1.0], 4, 2, order=order, seed=1)  # 1 + 2 = 3 candidates
    assert plan.num_candidates == 3
    assert plan.per_consumer(8, drop_last=True) == 0
    assert len(plan.plan(0, 7, 8, drop_last=True)[0]) == 0
    assert plan.per_consumer(8, drop_last=False) == 1
    got = [tuple(int(a[0]) for a in plan.plan(0, r, 8, drop_last=False)) for r in range(8)]
    assert got == [plan.candidate(0, r % 3) for r in range(8)]
    assert sorted(set(got)) == [(0, 0), (1, 0), (1, 2)]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("world,workers,batch", [(1, 1, 7), (1, 3, 5), (2, 2, 16), (3, 4, 3), (8, 3, 4), (8, 1, 1)])
def test_ranks_times_workers_read_each_clip_once(corpus, order, world, workers, batch):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=2, window=9)
    expected = set(brute_candidates(frames, clip_len, stride))
    seen: list[tuple[int, int]] = []
    for rank in range(world):
        rb = RankBatches(plan, rank=rank, world_size=world, batch_size=batch)
        assert rb.num_batches == (len(expected) // world) // batch  # drop_last: whole batches only
        indices = []
        for k in range(workers):
            for index, videos, starts in rb.iter_worker(epoch=4, worker=k, num_workers=workers):
                indices.append(index)
                assert len(videos) == batch
                seen += zip(videos.tolist(), starts.tolist())
        assert sorted(indices) == list(range(rb.num_batches))
    assert len(seen) == len(set(seen)) == world * rb.num_clips
    assert len(expected) - len(seen) < world * batch
    assert set(seen) <= expected


@pytest.mark.parametrize("world", [1, 3])
def test_pad_reads_every_clip_in_whole_batches(corpus, world):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, seed=2)
    seen = set()
    for rank in range(world):
        rb = RankBatches(plan, rank=rank, world_size=world, batch_size=10, drop_last=False)
        assert rb.num_batches == math.ceil(math.ceil(plan.num_candidates / world) / 10)
        for i in range(rb.num_batches):
            videos, starts = rb.batch(0, i)
            assert len(videos) == 10
            seen |= set(zip(videos.tolist(), starts.tolist()))
    assert seen == set(brute_candidates(frames, clip_len, stride))


@pytest.mark.parametrize("order", ORDERS)
def test_resume_on_another_world_size_from_an_offset_reads_the_rest_once(corpus, order):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=8, window=13)
    seen = []
    for rank in range(3):  # three ranks read 4 batches of 5 each ...
        rb = RankBatches(plan, rank=rank, world_size=3, batch_size=5)
        seen += [c for i in range(4) for c in zip(*(a.tolist() for a in rb.batch(1, i)))]
    for rank in range(2):  # ... then two ranks read the rest of the epoch
        rb = RankBatches(plan, rank=rank, world_size=2, batch_size=5, offset=3 * 4 * 5)
        seen += [c for i in range(rb.num_batches) for c in zip(*(a.tolist() for a in rb.batch(1, i)))]
    assert len(seen) == len(set(seen))
    assert plan.num_candidates - len(seen) < 2 * 5


# ---------------------------------------------------------------------------------------------------------
# bijectivity on awkward sizes
def _assert_bijective(n: int, order: str, seed: int, window: int = 64) -> None:
    clip_len, stride = 3, 2
    # split n over a few videos (one without candidates) so the video search is exercised too
    counts = [n // 3, 0, n - n // 3 - n // 5, n // 5]
    frames = frames_for_counts(counts, clip_len, stride)
    ids = CandidateIds(frames, clip_len, stride)
    assert ids.n == n
    plan = ClipPlan(frames, np.array([5.0, 1.0, np.nan, 2.0]), clip_len, stride, order=order, seed=seed, window=window)
    assert plan.num_candidates == n
    got = ids(*plan.plan(epoch=seed % 3))
    assert np.array_equal(np.bincount(got, minlength=n), np.ones(n, dtype=np.int64))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 1000003])
def test_bijective_for_odd_sizes(n, order):
    _assert_bijective(n, order, seed=n)


@pytest.mark.parametrize("k", range(1, 21))
def test_bijective_near_powers_of_two(k):
    for n in (2**k - 1, 2**k, 2**k + 1):
        _assert_bijective(n, "shuffle", seed=k)
        _assert_bijective(n, "age_mix", seed=k, window=3)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("lengths", ["one_giant", "lognormal", "mostly_empty"])
def test_bijective_for_skewed_video_lengths(order, lengths):
    """The video lookup indexes layout positions coarsely; uneven videos put many in one bucket."""
    rng = np.random.default_rng(len(lengths))
    if lengths == "one_giant":
        counts = [1] * 2000 + [1_000_000] + [0] * 500 + [2] * 2000
    elif lengths == "lognormal":
        counts = np.round(rng.lognormal(3.0, 2.5, size=3000)).astype(int).tolist()
    else:
        counts = [0] * 5000
        counts[17], counts[4000], counts[4999] = 3, 123457, 1
    clip_len, stride = 4, 3
    frames = frames_for_counts(counts, clip_len, stride)
    ids = CandidateIds(frames, clip_len, stride)
    ages = rng.uniform(0.0, 1000.0, size=len(counts))
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=3, window=1000)
    assert plan.num_candidates == ids.n == sum(counts)
    for world in (1, 3):
        got = np.concatenate([ids(*plan.plan(2, r, world, drop_last=False)) for r in range(world)])
        expected = np.ones(ids.n, dtype=np.int64)
        expected[: len(got) - ids.n] += 1  # pad's extra clips are at most world - 1
        assert np.array_equal(np.sort(np.bincount(got, minlength=ids.n))[::-1], expected)


def test_two_to_the_62_candidates():
    # the largest allowed epoch is exactly 2^62 candidates; one more is refused
    with pytest.raises(ValueError, match="2\\^62"):
        ClipPlan(np.array([2**62 - 10, 11]), None, 1, 1)
    plan = ClipPlan(np.array([2**62 - 10, 10]), np.array([1.0, 0.0]), 1, 1, order="age_mix", seed=9)
    assert plan.num_candidates == 2**62
    world = 7
    share = plan.per_consumer(world)
    videos, starts = plan.plan(1, consumer=5, world=world, start=share - 3000)
    assert len(videos) == 3000
    ids = np.where(videos == 0, starts, 2**62 - 10 + starts)
    assert ((starts >= 0) & (ids < 2**62)).all()
    assert len(np.unique(ids)) == 3000
    assert plan.window_bounds(2**62 - 1)[1] == 2**62


# ---------------------------------------------------------------------------------------------------------
# determinism and sensitivity
@pytest.mark.parametrize("order", ORDERS)
def test_plan_is_a_pure_function_of_seed_epoch_position(corpus, order):
    frames, ages, clip_len, stride = corpus
    a = ClipPlan(frames, ages, clip_len, stride, order=order, seed=77, window=13)
    b = ClipPlan(frames.copy(), ages.copy(), clip_len, stride, order=order, seed=77, window=13)
    whole = a.plan(5, 1, 3)
    assert all(np.array_equal(x, y) for x, y in zip(whole, b.plan(5, 1, 3)))
    # any split into pieces, in any call order, gives the same clips
    pieces = [a.plan(5, 1, 3, start=s, count=min(10, len(whole[0]) - s)) for s in range(0, len(whole[0]), 10)][::-1]
    assert np.array_equal(np.concatenate([p[0] for p in pieces[::-1]]), whole[0])
    assert np.array_equal(np.concatenate([p[1] for p in pieces[::-1]]), whole[1])
    # pickled copies (DataLoader workers under spawn) plan the same
    c = pickle.loads(pickle.dumps(a))
    assert repr(c) == repr(a)
    assert all(np.array_equal(x, y) for x, y in zip(whole, c.plan(5, 1, 3)))


@pytest.mark.parametrize("order", ORDERS)
def test_seed_and_epoch_change_the_order(corpus, order):
    frames, ages, clip_len, stride = corpus
    base = full_epoch(ClipPlan(frames, ages, clip_len, stride, order=order, seed=1, window=50), 0)
    other_seed = full_epoch(ClipPlan(frames, ages, clip_len, stride, order=order, seed=2, window=50), 0)
    other_epoch = full_epoch(ClipPlan(frames, ages, clip_len, stride, order=order, seed=1, window=50), 1)
    big_seed = full_epoch(ClipPlan(frames, ages, clip_len, stride, order=order, seed=2**64 - 1, window=50), 0)
    for other in (other_seed, other_epoch, big_seed):
        same = sum(x == y for x, y in zip(base, other))
        assert same < 0.1 * len(base), (order, same, len(base))


def test_planning_from_threads_gives_the_same_clips(corpus):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order="age_mix", seed=4, window=5)
    expected = [plan.plan(e, r, 3) for e in range(4) for r in range(3)]
    results: dict[int, list] = {}

    def work(t: int) -> None:
        results[t] = [plan.plan(e, r, 3) for e in range(4) for r in range(3)]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results.values():
        assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(got, expected))


# ---------------------------------------------------------------------------------------------------------
# statistics of the shuffle
def test_shuffle_is_not_the_identity_and_mixes_deciles():
    n = 10_000
    frames = frames_for_counts([n // 4] * 4, 1, 1)
    ids = CandidateIds(frames, 1, 1)
    got = ids(*ClipPlan(frames, None, 1, 1, seed=123).plan(0))
    assert np.count_nonzero(got == np.arange(n)) < 20
    # candidate decile vs position decile: 100 expected per cell, chi2 with 81 degrees of freedom
    table = np.zeros((10, 10))
    np.add.at(table, (got * 10 // n, np.arange(n) * 10 // n), 1)
    chi2 = ((table - 100.0) ** 2 / 100.0).sum()
    assert chi2 < 81 + 6 * math.sqrt(2 * 81), chi2
    assert abs(np.corrcoef(got, np.arange(n))[0, 1]) < 0.05


def _chi2_z(observed: np.ndarray, expected: np.ndarray, dof: int) -> float:
    return float((((observed - expected) ** 2) / expected).sum() - dof) / math.sqrt(2 * dof)


@pytest.mark.parametrize("n", [6, 64, 300, 3000, 70000])
def test_where_candidates_land_and_their_gaps_are_uniform_over_epochs(n):
    """Small and mid-sized domains are where a weak keyed permutation shows (a 4-round Feistel network on
    n = 6 fails this by z ~ 400): bucket (candidate, position) and the gap between the positions of
    neighbouring candidates over many epochs, and compare with the uniform expectation by chi2."""
    m = min(n - 1, 16)
    epochs = max(4, 200_000 // n)
    plan = ClipPlan(np.array([n]), None, 1, 1, seed=31337)
    x_bucket = np.arange(n) * m // n
    sizes = np.bincount(x_bucket, minlength=m)
    gap_sizes = np.bincount(np.arange(n - 1) * m // (n - 1), minlength=m)
    table = np.zeros((m, m))
    gaps = np.zeros(m)
    for e in range(epochs):
        _, starts = plan.plan(e)
        pos_of = np.empty(n, dtype=np.int64)
        pos_of[starts] = np.arange(n)
        np.add.at(table, (x_bucket, pos_of * m // n), 1)
        gap = (pos_of[1:] - pos_of[:-1]) % n
        gaps += np.bincount((gap - 1) * m // (n - 1), minlength=m)
    assert _chi2_z(table, epochs * np.outer(sizes, sizes) / n, (m - 1) ** 2) < 6
    assert _chi2_z(gaps, epochs * (n - 1) * gap_sizes / (n - 1), m - 1) < 6


# ---------------------------------------------------------------------------------------------------------
# age orders
def _layout_positions(plan: ClipPlan, layout: list[tuple[int, int]], epoch: int) -> np.ndarray:
    index = {c: i for i, c in enumerate(layout)}
    return np.array([index[c] for c in full_epoch(plan, epoch)])


@pytest.mark.parametrize("window", [1, 13, 64, 10_000])
def test_age_order_shuffles_inside_windows_and_is_monotone_across_them(corpus, window):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order="age", seed=8, window=window)
    layout = age_layout(frames, ages, clip_len, stride)
    n = len(layout)
    pos = _layout_positions(plan, layout, epoch=2)
    windows = age_windows(n, window)
    shuffled = 0
    for begin, end in windows:
        assert sorted(pos[begin:end]) == list(range(begin, end))  # window = exactly its age slice
        shuffled += not np.array_equal(pos[begin:end], np.arange(begin, end))
        assert plan.window_bounds(begin) == plan.window_bounds(end - 1) == (begin, end)
    if window >= 13:
        assert shuffled >= len(windows) - 1  # the tail window may be tiny
    # clip ages never decrease from one window to the next (NaN = unknown = oldest)
    clip_age = np.nan_to_num(ages[np.array([layout[p][0] for p in pos])], nan=np.inf)
    for (b0, e0), (b1, e1) in zip(windows, windows[1:]):
        assert clip_age[b0:e0].max() <= clip_age[b1:e1].min()


@pytest.mark.parametrize("window", [1, 5, 40, 300, 5000])
def test_age_mix_windows_double_until_the_remainder(corpus, window):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order="age_mix", seed=8, window=window)
    layout = age_layout(frames, ages, clip_len, stride)
    n = len(layout)
    windows = age_mix_windows(n, window)
    assert [plan.window_bounds(p) for p in range(n)] == [w for w in windows for _ in range(w[1] - w[0])]
    sizes = [e - b for b, e in windows]
    assert sizes[:-1] == [window * 2**i for i in range(len(sizes) - 1)]
    assert window * 2 ** (len(sizes) - 1) <= sizes[-1] < 3 * window * 2 ** (len(sizes) - 1) or len(sizes) == 1
    pos = _layout_positions(plan, layout, epoch=6)
    for begin, end in windows:
        assert sorted(pos[begin:end]) == list(range(begin, end))
    last_begin = windows[-1][0]
    assert not np.array_equal(pos[last_begin:], np.arange(last_begin, n))


def test_age_orders_put_unknown_ages_last_and_all_nan_keeps_index_order(caplog):
    frames = np.array([40, 40, 40, 40])
    ages = np.array([np.nan, 20.0, 10.0, 20.0])
    plan = ClipPlan(frames, ages, 8, 8, order="age", window=1)  # window 1: no shuffle at all
    assert [v for v, _ in full_epoch(plan, 0)] == [2] * 5 + [1] * 5 + [3] * 5 + [0] * 5
    with caplog.at_level("WARNING"):
        nan_plan = ClipPlan(frames, np.full(4, np.nan), 8, 8, order="age_mix", window=1)
    assert "every age is unknown" in caplog.text
    assert [nan_plan.window_bounds(p) for p in (0, 2, 6, 19)] == [(0, 1), (1, 3), (3, 7), (7, 20)]
    strict = ClipPlan(frames, np.full(4, np.nan), 8, 8, order="age", window=1)
    assert full_epoch(strict, 0) == brute_candidates(frames, 8, 8)


# ---------------------------------------------------------------------------------------------------------
# resume with another number of workers
def _round_robin(streams: list) -> list:
    """What torch's DataLoader delivers: one item per live worker in turn (in_order=True)."""
    iters, out = [iter(s) for s in streams], []
    while iters:
        alive = []
        for it in iters:
            item = next(it, None)
            if item is not None:
                out.append(item)
                alive.append(it)
        iters = alive
    return out


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("workers_before,workers_after,stop", [(1, 4, 3), (3, 2, 7), (4, 4, 0), (2, 5, 11)])
def test_resume_with_other_worker_counts_continues_the_same_sequence(corpus, order, workers_before, workers_after,
                                                                      stop):
    frames, ages, clip_len, stride = corpus
    plan = ClipPlan(frames, ages, clip_len, stride, order=order, seed=21, window=17)
    for rank in range(2):
        rb = RankBatches(plan, rank=rank, world_size=2, batch_size=6)
        reference = [(i, v.tolist(), s.tolist()) for i, v, s in _round_robin([rb.iter_worker(1)])]
        assert [i for i, _, _ in reference] == list(range(rb.num_batches))
        before = _round_robin([rb.iter_worker(1, k, workers_before) for k in range(workers_before)])[:stop]
        after = _round_robin([rb.iter_worker(1, k, workers_after, batches_done=stop) for k in range(workers_after)])
        resumed = [(i, v.tolist(), s.tolist()) for i, v, s in before + after]
        assert resumed == reference


def test_worker_batch_indices():
    assert list(worker_batch_indices(10, 1, 3)) == [1, 4, 7]
    assert list(worker_batch_indices(10, 2, 3, batches_done=6)) == [8]
    assert list(worker_batch_indices(10, 0, 4, batches_done=10)) == []
    with pytest.raises(ValueError, match="worker = 3"):
        worker_batch_indices(10, 3, 3)
    with pytest.raises(ValueError, match="batches_done = 11"):
        worker_batch_indices(10, 0, 1, batches_done=11)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on a 2-core CI machine
def test_resume_through_a_real_dataloader(corpus):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    class RankDataset(IterableDataset):
        def __init__(self, batches: RankBatches, epoch: int, batches_done: int) -> None:
            self.batches, self.epoch, self.batches_done = batches, epoch, batches_done

        def __iter__(self):
            info = get_worker_info()
            k, workers = (0, 1) if info is None else (info.id, info.num_workers)
            yield from self.batches.iter_worker(self.epoch, k, workers, self.batches_done)

    def run(workers: int, batches_done: int, stop=None) -> list:
        loader = DataLoader(RankDataset(rb, 2, batches_done), batch_size=None, num_workers=workers,
                            multiprocessing_context="fork" if workers else None)
        out = []
        for index, videos, starts in loader:
            out.append((int(index), videos.tolist(), starts.tolist()))
            if stop is not None and len(out) == stop:
                break
        return out

    frames, ages, clip_len, stride = corpus
    rb = RankBatches(ClipPlan(frames, ages, clip_len, stride, order="age_mix", seed=3, window=11), 1, 3, 8)
    uninterrupted = run(0, 0)
    assert [i for i, _, _ in uninterrupted] == list(range(rb.num_batches))
    assert run(2, 0, stop=5) + run(3, 5) == uninterrupted
    assert torch.is_tensor(next(iter(DataLoader(RankDataset(rb, 2, 0), batch_size=None)))[1])


# ---------------------------------------------------------------------------------------------------------
# errors name the argument and its value
@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(span=0), ValueError, "span = 0"),
        (dict(stride=0), ValueError, "stride = 0"),
        (dict(window=0), ValueError, "window = 0"),
        (dict(order="random"), ValueError, "order = 'random'.*'shuffle', 'age', 'age_mix'"),
        (dict(seed=-1), ValueError, "seed = -1"),
        (dict(seed=2**64), ValueError, "seed = 18446744073709551616"),
        (dict(span=2.5), TypeError, "span must be an int, got float 2.5"),
        (dict(span=True), TypeError, "span must be an int"),
        (dict(frames=[10, 20, -3]), ValueError, r"frames\[2\] = -3 is negative"),
        (dict(frames=[10.0, 20.0]), TypeError, "frames must hold integers.*float64"),
        (dict(frames=[[10, 20]]), ValueError, r"frames must be 1-D.*\(1, 2\)"),
        (dict(frames=[]), ValueError, "frames is empty"),
        (dict(ages=[1.0]), ValueError, r"ages must be 1-D with one entry per video \(3\)"),
        (dict(ages=[1.0, np.inf, 2.0]), ValueError, r"ages\[1\] = inf is not finite"),
        (dict(ages=None, order="age"), ValueError, "order = 'age' sorts videos by age: pass ages"),
        (dict(span=31), ValueError, r"a clip spans 31 frames but the longest video \(index 1\) has 30 frames"),
        (dict(frames=[2**62, 2**62], ages=None, span=1), ValueError, "more than 2\\^62 clip candidates"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    args = dict(frames=[10, 30, 20], ages=[5.0, 1.0, np.nan], span=4, stride=None, order="shuffle", seed=0)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ClipPlan(**args)


def test_plan_errors():
    plan = ClipPlan([10, 30, 20], None, 4, 2)  # 4 + 14 + 9 = 27 candidates
    assert plan.num_candidates == 27
    with pytest.raises(ValueError, match=r"consumer = 3 is not allowed; it must be in \[0, 2\]"):
        plan.plan(0, consumer=3, world=3)
    with pytest.raises(ValueError, match="world = 0"):
        plan.plan(0, world=0)
    with pytest.raises(ValueError, match="epoch = -1"):
        plan.plan(-1)
    with pytest.raises(ValueError, match=r"start = 14 is not allowed; it must be in \[0, 13\]"):
        plan.plan(0, 0, 2, start=14)
    with pytest.raises(ValueError, match=r"count = 5 is not allowed; it must be in \[0, 4\]"):
        plan.plan(0, 0, 2, start=9, count=5)
    with pytest.raises(IndexError, match=r"position = 27 is outside the epoch \[0, 27\)"):
        plan.candidate(0, 27)
    with pytest.raises(ValueError, match="batch_size = 0"):
        RankBatches(plan, batch_size=0)
    with pytest.raises(ValueError, match="rank = 2"):
        RankBatches(plan, rank=2, world_size=2)
    assert len(plan.plan(0, 0, 2, start=13)[0]) == 0  # an empty tail is fine


def test_core_rejects_bad_arguments_without_the_wrapper():
    from babyfast import _core

    core = _core.ClipPlanner(np.array([10, 30], dtype=np.int64), None, 4, None, "shuffle", 0, 8)
    with pytest.raises(IndexError, match="consumer = 2"):
        core.plan(0, 2, 2, 0, 1, True)
    with pytest.raises(IndexError, match="runs past"):
        core.plan(0, 0, 2, 10, 5, True)
    with pytest.raises(ValueError, match="order = 'x'"):
        _core.ClipPlanner(np.array([10], dtype=np.int64), None, 4, None, "x", 0, 8)
    with pytest.raises(TypeError):
        _core.ClipPlanner(np.array([10.5]), None, 4, None, "shuffle", 0, 8)


@pytest.mark.parametrize("world,drop_last", [(1, True), (3, True), (3, False), (8, False)])
def test_rank_batch_positions_name_the_batch_clips(world, drop_last):
    plan = ClipPlan([70, 33, 90, 16], [5.0, 1.0, 3.0, 2.0], span=8, stride=4, order="age", window=5, seed=9)
    for rank in range(world):
        rb = RankBatches(plan, rank=rank, world_size=world, batch_size=4, drop_last=drop_last)
        for i in range(rb.num_batches):
            videos, starts = rb.batch(2, i)
            got = [plan.candidate(2, int(p)) for p in rb.positions(i)]
            assert got == list(zip(videos.tolist(), starts.tolist()))
