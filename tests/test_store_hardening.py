"""Store hardening (issue 15): one writer per store, ids that never replace another recording, workers
that die with their run, every failed write of the store a message, and ingest split over machines.

Each test stages what the issue found with real processes (a concurrent ingest, a lock holder, SIGKILL),
real files and real permissions; none of them mocks a part that can run.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from _media import make_video, reference

import babyfast.store  # noqa: F401  (registers the chunk codec for plain zarr reads)
from babyfast.store import StoreError, open_store
from babyfast.store.layout import read_index, read_log
from babyfast.store.ingest import ingest
from babyfast.store.summary import check

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "babyfast", *args], capture_output=True, text=True, env=ENV, **kw)


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def frames_of(store: Path, vid: str) -> np.ndarray:
    return zarr.open_group(str(store), mode="r")[f"videos/{vid}/frames"][:]


HOLD_LOCK = ("import sys\n"
             "from babyfast.store._lock import StoreLock\n"
             "lock = StoreLock(sys.argv[1]).acquire()\n"
             "print('held', flush=True)\n"
             "sys.stdin.read()\n"
             "lock.release()\n")


def hold_lock(store: Path) -> subprocess.Popen:
    """Another process holding the store's lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    return proc


# ---------------------------------------------------------------------------------------------- 1: one writer

def test_a_second_ingest_is_refused_naming_the_holder_or_waits_for_it(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    holder = hold_lock(store)
    try:
        out = run_cli("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--no-progress")
        assert out.returncode == 2, out.stdout + out.stderr
        assert f"another ingest is writing this store: pid {holder.pid} on host " in out.stderr
        assert "since 20" in out.stderr and "--wait" in out.stderr and "Traceback" not in out.stderr
        assert not (store / "videos").exists()
        waiting = subprocess.Popen([sys.executable, "-m", "babyfast", "ingest", str(src), str(store), "--size", "32",
                                    "--gop", "4", "--no-progress", "--wait"], env=ENV, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2.0)
        assert waiting.poll() is None and not (store / "videos").exists()  # it waits, and writes nothing
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    stdout, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stdout + stderr
    assert f"waiting for pid {holder.pid}" in stderr
    assert list(read_index(store)["id"]) == ["a"]


def test_a_store_being_created_by_another_ingest_is_not_refused(tmp_path: Path) -> None:
    """Each moment of `create_store` as a second ingest sees it before it waits for the lock (CI caught
    the second run refusing a store whose `videos/` existed before its root metadata)."""
    from babyfast._atomic import temp_path
    from babyfast.store.layout import LOCK_FILE, check_new_store, create_store

    root = tmp_path / "store"
    root.mkdir()
    (root / LOCK_FILE).touch()
    check_new_store(root)
    (root / "videos").mkdir()
    check_new_store(root)
    temp_path(root / "videos" / "zarr.json").touch()
    (root / "videos" / "zarr.json").write_text("{}")
    temp_path(root / "zarr.json").touch()
    check_new_store(root)
    (root / "videos" / "day1").mkdir()  # a video folder without root metadata is someone else's data
    with pytest.raises(StoreError, match="not a babyfast store"):
        check_new_store(root)
    (root / "videos" / "day1").rmdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a babyfast store"):
        check_new_store(root)
    (root / "notes.txt").unlink()
    create_store(root, height=32, width=32, fps=30.0, gop=2, codec="raw", quality=90, shard_chunks=2, created={})
    check_new_store(root)


def test_two_ingests_at_once_into_one_store_lose_nothing(tmp_path: Path) -> None:
    """The issue's data loss: two runs from different folders into one store at the same moment."""
    store = tmp_path / "store"
    runs = []
    for folder, names in (("srcA", ("a1", "a2")), ("srcB", ("b1", "b2"))):
        (tmp_path / folder).mkdir()
        for name in names:
            make_video(tmp_path / folder / f"{name}.mp4", frames=60, w=64, h=48)
    for folder in ("srcA", "srcB"):
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "babyfast", "ingest", str(tmp_path / folder), str(store), "--fps", "30",
             "--size", "32", "--gop", "2", "--shard-chunks", "2", "--codec", "raw", "--no-progress", "--wait"],
            env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stdout + stderr
    assert sorted(read_index(store)["id"]) == ["a1", "a2", "b1", "b2"]
    for folder, vid in (("srcA", "a1"), ("srcA", "a2"), ("srcB", "b1"), ("srcB", "b2")):
        ref, _ = reference(tmp_path / folder / f"{vid}.mp4", fps=30, size=32)
        assert np.array_equal(frames_of(store, vid), ref), vid  # complete: no chunk missing or zero
    assert check(store, progress=False).ok
    assert sum(e.get("event") == "run" for e in read_log(store)) == 2
    assert not any((store / ".partial").iterdir()) if (store / ".partial").exists() else True


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    holder = hold_lock(store)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert json.loads((store / ".lock").read_text())["pid"] == holder.pid  # what the dead run left
    with caplog.at_level(logging.WARNING, logger="babyfast.store._lock"):
        r = ingest(src, store, size=32, gop=4, progress=False)
    assert r.ok and r.ingested == ["a"]
    assert f"took over the lock of pid {holder.pid}" in caplog.text
    assert (store / ".lock").read_text() == ""  # released cleanly: the next run has nothing to report


def test_publication_checks_every_chunk_was_written(tmp_path: Path) -> None:
    from babyfast.store._validate import verify_complete

    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=60, w=64, h=48)
    assert ingest(src, tmp_path / "store", size=32, gop=4, shard_chunks=2, codec="raw", progress=False).ok
    built = tmp_path / "built" / "frames"
    shutil.copytree(tmp_path / "store" / "videos" / "a" / "frames", built)
    verify_complete(built, "a", 20)  # all 5 chunks there
    (built / "c" / "1" / "0" / "0" / "0").unlink()  # as the other run's cleanup did
    with pytest.raises(StoreError, match=r"2 of 5 chunks are not in the shard files \(chunks 2, 3\); not published"):
        verify_complete(built, "a", 20)


# ---------------------------------------------------------------------------------------------- 2: ids

def test_a_same_named_recording_from_another_folder_never_replaces_a_stored_one(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for folder, n in (("srcA", 20), ("srcB", 30)):
        (tmp_path / folder).mkdir()
        make_video(tmp_path / folder / "day1.mp4", frames=n, w=64, h=48)
    opts = dict(size=32, gop=4, codec="raw", progress=False)
    assert ingest(tmp_path / "srcA", store, **opts).ingested == ["day1"]
    kept = tree_digest(store / "videos" / "day1")
    sha_b = hashlib.sha256((tmp_path / "srcB" / "day1.mp4").read_bytes()).hexdigest()

    out = run_cli("ingest", str(tmp_path / "srcB"), str(store), "--size", "32", "--gop", "4", "--codec", "raw",
                  "--no-progress")
    assert out.returncode == 0, out.stdout + out.stderr
    new_id = f"day1~{sha_b[:12]}"
    assert f"{tmp_path / 'srcB' / 'day1.mp4'}: stored as {new_id!r}" in out.stdout
    assert str((tmp_path / "srcA" / "day1.mp4").resolve()) in out.stdout  # the file holding the id is named
    assert tree_digest(store / "videos" / "day1") == kept
    assert sorted(read_index(store)["id"]) == ["day1", new_id]
    ref, _ = reference(tmp_path / "srcB" / "day1.mp4", fps=10, size=32)
    assert np.array_equal(frames_of(store, new_id), ref)
    assert any(e.get("event") == "renamed" and e["id"] == new_id for e in read_log(store))

    # re-runs find the same ids again; the same content at a third path is the same recording
    assert sorted(ingest(tmp_path / "srcB", store, **opts).skipped) == [new_id]
    (tmp_path / "srcC").mkdir()
    shutil.copy(tmp_path / "srcA" / "day1.mp4", tmp_path / "srcC" / "day1.mp4")
    r = ingest(tmp_path / "srcC", store, **opts)
    assert r.skipped == ["day1"] and not r.ingested and not r.renamed

    # the same path with new content is a replacement, and says so
    make_video(tmp_path / "srcA" / "day1.mp4", frames=40, w=64, h=48)
    r = ingest(tmp_path / "srcA", store, **opts)
    assert r.ingested == ["day1"] and r.replaced == ["day1"] and r.ok
    assert zarr.open_group(str(store), mode="r")["videos/day1/frames"].shape[0] == 14
    assert any(e.get("event") == "replaced" and e["id"] == "day1" for e in read_log(store))


def test_two_recordings_of_one_run_with_one_id_are_both_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "kid1").mkdir(parents=True)
    make_video(src / "kid1" / "day1.mp4", frames=20, w=64, h=48)
    make_video(src / "kid1__day1.mp4", frames=30, w=64, h=48)  # the id of kid1/day1.mp4 too
    r = ingest(src, tmp_path / "store", size=32, gop=4, codec="raw", progress=False)
    assert r.ok and len(r.ingested) == 2 and "kid1__day1" in r.ingested
    other = next(v for v in r.ingested if v != "kid1__day1")
    assert other.startswith("kid1__day1~")
    frames = {v: zarr.open_group(str(tmp_path / "store"), mode="r")[f"videos/{v}/frames"].shape[0] for v in r.ingested}
    assert sorted(frames.values()) == [7, 10]


# ---------------------------------------------------------------------------------------------- 8: workers

def _spawned_children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent (now init) has yet to reap it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_ingest(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "v0.mp4", frames=1200, w=96, h=72, crf=20)
    for i in (1, 2, 3):
        shutil.copy(src / "v0.mp4", src / f"v{i}.mp4")
    proc = subprocess.Popen([sys.executable, "-m", "babyfast", "ingest", str(src), str(store), "--fps", "30",
                             "--size", "64", "--gop", "2", "--shard-chunks", "1", "--codec", "raw", "--workers", "2",
                             "--no-progress"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    workers: list[int] = []
    while time.time() < deadline and proc.poll() is None:
        workers = _spawned_children(proc.pid)
        busy = sum(1 for p in (store / ".partial").glob("*/frames/c")) if (store / ".partial").exists() else 0
        if len(workers) >= 3 and busy >= 2:  # the manager and two workers, both writing a video
            break
        time.sleep(0.05)
    assert proc.poll() is None and len(workers) >= 3, "ingest ended before its workers were busy"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t = time.time()
    while any(_alive(p) for p in workers) and time.time() - t < 5:
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers), f"workers {[p for p in workers if _alive(p)]} outlived their run"
    published = sorted(p.name for p in (store / "videos").iterdir() if p.is_dir()) if (store / "videos").exists() else []
    time.sleep(1.0)
    assert (sorted(p.name for p in (store / "videos").iterdir() if p.is_dir()) if (store / "videos").exists() else []) == published


# ---------------------------------------------------------------------------------------------- 9: writes

def _without_root_powers() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from the
    bounding set, so that root (as in CI containers) meets file permissions like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run_restricted(*args: str) -> subprocess.CompletedProcess:
    pre = _without_root_powers if os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "babyfast", *args], capture_output=True, text=True, env=ENV,
                          preexec_fn=pre)


def _can_restrict(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir(mode=0o555)
    try:
        out = subprocess.run([sys.executable, "-c", f"import os; os.mkdir({str(probe / 'x')!r})"],
                             preexec_fn=_without_root_powers if os.geteuid() == 0 else None, capture_output=True)
    except OSError:
        return False
    finally:
        probe.chmod(0o755)
    return out.returncode != 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file capabilities are Linux's")
def test_a_failed_index_write_is_a_message_and_the_log_is_still_written(tmp_path: Path) -> None:
    if not _can_restrict(tmp_path):
        pytest.skip("cannot make a folder unwritable for this user")
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    assert ingest(src, store, size=32, gop=4, progress=False).ok
    make_video(src / "b.mp4", frames=20, w=64, h=48)
    (store / "index").chmod(0o555)  # the index cannot be moved aside, so it cannot be replaced
    try:
        out = _run_restricted("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--no-progress")
    finally:
        (store / "index").chmod(0o755)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    line = next(x for x in out.stdout.splitlines() if "[store]" in x)
    assert f"[store] {store / 'index'}: cannot write the index: Permission denied" in line
    assert "ingested 1 video(s)" in out.stdout and (store / "videos" / "b" / "zarr.json").is_file()
    events = read_log(store)
    assert any(e.get("event") == "ingested" and e["id"] == "b" for e in events)
    assert any(e.get("event") == "store" and "cannot write the index" in e["reason"] for e in events)
    assert list(read_index(store)["id"]) == ["a"]  # the old index is intact; the next run catches up
    assert sorted(ingest(src, store, size=32, gop=4, progress=False).skipped) == ["a", "b"]
    assert list(read_index(store)["id"]) == ["a", "b"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file capabilities are Linux's")
def test_a_read_only_store_is_a_message(tmp_path: Path) -> None:
    if not _can_restrict(tmp_path):
        pytest.skip("cannot make a folder unwritable for this user")
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    assert ingest(src, store, size=32, gop=4, progress=False).ok
    make_video(src / "b.mp4", frames=20, w=64, h=48)
    modes = {p: p.stat().st_mode for p in [store, *store.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        out = _run_restricted("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--no-progress")
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"{store / '.lock'}: cannot take the store's lock: Permission denied" in out.stderr


def test_a_root_zarr_json_that_is_a_list_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "zarr.json").write_text("[1, 2, 3]")
    with pytest.raises(StoreError, match="zarr.json: expected a JSON object, got a JSON list"):
        open_store(store)
    for cmd in ("inspect", "check"):
        out = run_cli(cmd, str(store), "--no-progress") if cmd == "check" else run_cli(cmd, str(store))
        assert out.returncode == 2 and "expected a JSON object" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "src").mkdir()
    make_video(tmp_path / "src" / "a.mp4", frames=10, w=64, h=48)
    with pytest.raises(StoreError, match="expected a JSON object"):
        ingest(tmp_path / "src", store, size=32, gop=4, progress=False)
    assert not (store / ".lock").exists()  # nothing of ours left in a folder that is not a store


def test_check_finds_two_index_entries_on_the_same_bytes(tmp_path: Path) -> None:
    from babyfast._core import crc32c

    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=40, w=64, h=48)
    assert ingest(src, store, size=32, gop=2, shard_chunks=4, codec="raw", progress=False).ok
    shard = store / "videos" / "a" / "frames" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    body = 4 * 16
    index = np.frombuffer(bytes(data[-(body + 4):-4]), dtype="<u8").reshape(4, 2).copy()
    index[1] = index[0]  # chunk 1 now reads chunk 0's GOP: intact bytes, a valid crc, the wrong frames
    packed = index.tobytes()
    data[-(body + 4):] = packed + int(crc32c(packed)).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    r = check(store, progress=False)
    assert {(v, c) for v, c, _ in r.bad} == {("a", 0), ("a", 1)}, r.bad
    assert all("overlap" in what for _, _, what in r.bad)
    out = run_cli("check", str(store), "--no-progress")
    assert out.returncode == 1 and "CORRUPT video a chunk 1: its bytes in c/0/0/0/0 overlap those of chunk 0" in out.stdout


# ---------------------------------------------------------------------------------------------- 10: --part

def test_part_k_of_n_splits_the_recordings_over_stores(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "kid1").mkdir(parents=True)
    names = ["kid1/a.mp4", "kid1/b.mp4", "c.mp4", "d.mp4", "e.mp4", "f.mp4"]
    make_video(src / names[0], frames=10, w=64, h=48)
    for name in names[1:]:
        shutil.copy(src / names[0], src / name)
    (src / "ages.csv").write_text("video,subject,age_days\n" + "".join(
        f"{n},S{i},{100 + i}\n" for i, n in enumerate(names)))
    stores = []
    for k in (1, 2, 3):
        store = tmp_path / f"store-{k}"
        out = run_cli("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--codec", "raw",
                      "--no-progress", "--part", f"{k}/3")
        assert out.returncode == 0, out.stdout + out.stderr  # rows of the other parts' videos are no problem
        stores.append(sorted(read_index(store)["id"]))
    everything = sorted(v for ids in stores for v in ids)
    assert everything == ["c", "d", "e", "f", "kid1__a", "kid1__b"]  # each recording in exactly one store
    assert all(stores)  # six recordings over three parts: every part has some (for these names)
    # the same share again (another machine, a re-run): nothing new to do
    again = ingest(src, tmp_path / "store-1", size=32, gop=4, codec="raw", progress=False, part="1/3")
    assert sorted(again.skipped) == stores[0] and not again.ingested
    ages = dict(zip(read_index(tmp_path / "store-1")["id"], read_index(tmp_path / "store-1")["age_days"]))
    want = {("kid1__" + n[5:-4] if n.startswith("kid1/") else n[:-4]): 100.0 + i for i, n in enumerate(names)}
    assert ages == {v: want[v] for v in stores[0]}
    for bad in ("0/3", "4/3", "3", "a/b"):
        out = run_cli("ingest", str(src), str(tmp_path / "x"), "--part", bad)
        assert out.returncode == 2 and "K/N with 1 <= K <= N" in out.stderr
