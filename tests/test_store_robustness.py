"""Bad input never stops a run nor touches what was written; a killed ingest resumes; format errors."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from _media import make_audio_only, make_video, reference

import babyfast.store  # noqa: F401
from babyfast.store import StoreError, open_store
from babyfast.store.layout import read_index, read_log
from babyfast.store.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def run_cli(*args: str, env_extra: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "babyfast", *args], capture_output=True, text=True, env=env, **kw)


def test_each_bad_input_is_reported_and_nothing_written_is_touched(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "first.mp4", frames=30, w=64, h=48)
    assert ingest(src, store, size=32, gop=4, progress=False).ok
    kept = tree_digest(store / "videos" / "first")

    good = src / "good.mp4"
    make_video(good, frames=30, w=64, h=48)
    (src / "zero.mp4").write_bytes(b"")
    (src / "notes.mov").write_text("this is not a video\n" * 50)
    make_video(src / "whole.mp4", frames=60, w=64, h=48)
    data = (src / "whole.mp4").read_bytes()
    (src / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (src / "whole.mp4").unlink()
    make_audio_only(src / "voice.mp4")
    make_video(src / "damaged.mp4", frames=90, w=160, h=120, crf=20)
    raw = bytearray((src / "damaged.mp4").read_bytes())
    n = len(raw)
    raw[n // 3: n // 3 + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (src / "damaged.mp4").write_bytes(bytes(raw))

    out = run_cli("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--no-progress")
    assert out.returncode == 1, out.stdout + out.stderr
    report = out.stdout
    for name, why in [("zero.mp4", "empty file"), ("notes.mov", "not a readable video"),
                      ("truncated.mp4", ""), ("voice.mp4", "no video stream"), ("damaged.mp4", "undecodable")]:
        line = next((x for x in report.splitlines() if name in x), None)
        assert line is not None and why in line, (name, report)
    # a damaged recording keeps its decodable frames; the good one is complete; the first one is untouched
    ids = set(read_index(store)["id"])
    assert {"first", "good", "damaged"} <= ids and not ids & {"zero", "notes", "truncated", "voice"}
    assert tree_digest(store / "videos" / "first") == kept
    g = zarr.open_group(str(store), mode="r")
    assert g["videos/good/frames"].shape[0] == 10
    assert g["videos/damaged"].attrs["bad_packets"] > 0
    events = read_log(store)
    logged = {Path(e["file"]).name for e in events if e.get("event") in ("failed", "damaged")}
    assert logged == {"zero.mp4", "notes.mov", "truncated.mp4", "voice.mp4", "damaged.mp4"}
    assert not (store / ".partial").exists() or not any((store / ".partial").iterdir())


def _partial_has_shard(store: Path) -> bool:
    pdir = store / ".partial"
    return pdir.is_dir() and any(p.name == "c" for p in pdir.rglob("c"))


def test_kill_during_ingest_then_resume(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    for name, n in [("a", 30), ("b", 900), ("c", 30)]:
        make_video(src / f"{name}.mp4", frames=n, w=96, h=72, rate=30, crf=12)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "babyfast", "ingest", str(src), str(store), "--fps", "30", "--size", "64",
            "--gop", "2", "--shard-chunks", "1", "--codec", "raw", "--no-progress"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not _partial_has_shard(store) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    assert proc.poll() is None, "ingest finished before it could be killed; make the video longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _partial_has_shard(store)  # killed in the middle of writing a video
    # nothing half-written is visible: every video present is complete and the store opens
    visible = sorted(p.name for p in (store / "videos").iterdir() if p.is_dir()) if (store / "videos").exists() else []
    assert "b" not in visible
    for v in visible:
        attrs = json.loads((store / "videos" / v / "zarr.json").read_text())["attributes"]
        assert attrs["frames"] == zarr.open_group(str(store), mode="r")[f"videos/{v}/frames"].shape[0]
    open_store(store)
    # the next run finishes the job, and the result is what an uninterrupted run gives
    r = ingest(src, store, fps=30, size=64, gop=2, shard_chunks=1, codec="raw", progress=False)
    assert r.ok and "b" in r.ingested
    assert sorted(read_index(store)["id"]) == ["a", "b", "c"]
    assert not (store / ".partial").exists() or not any((store / ".partial").iterdir())
    ref, _ = reference(src / "b.mp4", fps=30, size=64)
    assert np.array_equal(zarr.open_group(str(store), mode="r")["videos/b/frames"][:], ref)


def test_store_format_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a zarr v3 store"):
        open_store(tmp_path / "plain")
    zarr.open_group(str(tmp_path / "other"), mode="w")
    with pytest.raises(StoreError, match="not a babyfast store"):
        open_store(tmp_path / "other")
    g = zarr.open_group(str(tmp_path / "future"), mode="w")
    g.attrs["babyfast"] = {"format": 99, "height": 1, "width": 1, "fps": 1, "gop": 1, "codec": "raw", "shard_chunks": 1}
    with pytest.raises(StoreError, match="format 99 is not supported"):
        open_store(tmp_path / "future")
    g = zarr.open_group(str(tmp_path / "bad"), mode="w")
    g.attrs["babyfast"] = {"format": 1, "height": 1}
    with pytest.raises(StoreError, match="malformed"):
        open_store(tmp_path / "bad")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        open_store(tmp_path / "broken")
    out = run_cli("inspect", str(tmp_path / "future"))
    assert out.returncode == 2 and "format 99" in out.stderr
    with pytest.raises(FileNotFoundError, match="no such file"):
        ingest(tmp_path / "nowhere", tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="not a babyfast store"):
        ingest(tmp_path, tmp_path / "other", progress=False)
    with pytest.raises(ValueError, match="codec 'mpeg2'"):
        ingest(tmp_path, tmp_path / "s", codec="mpeg2", progress=False)


def test_index_catches_up_with_videos_published_before_a_kill(tmp_path: Path) -> None:
    import shutil

    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    make_video(src / "b.mp4", frames=20, w=64, h=48)
    ingest(src, store, size=32, gop=4, progress=False)
    # as if killed after b was renamed into videos/ but before the index was rewritten
    shutil.rmtree(store / "index")
    from babyfast.store.layout import write_index, index_row, video_attrs

    write_index(store, [index_row("a", video_attrs(store, "a"))])
    assert list(read_index(store)["id"]) == ["a"]
    r = ingest(src, store, size=32, gop=4, progress=False)
    assert sorted(r.skipped) == ["a", "b"]
    assert list(read_index(store)["id"]) == ["a", "b"]


def test_a_replacement_interrupted_between_its_renames_loses_nothing(tmp_path: Path) -> None:
    src, store = tmp_path / "src", tmp_path / "store"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    ingest(src, store, size=32, gop=4, progress=False)
    before = tree_digest(store / "videos" / "a")
    # as if killed after publish() moved the old video aside and before the new one was renamed in
    aside = store / ".partial" / "~old.123.abcd" / "videos" / "a"
    aside.parent.mkdir(parents=True)
    os.rename(store / "videos" / "a", aside)
    r = ingest(src, store, size=32, gop=4, progress=False)
    assert r.skipped == ["a"] and tree_digest(store / "videos" / "a") == before


def test_a_worker_process_that_dies_fails_its_file_only(tmp_path: Path) -> None:
    """A real worker death: a sitecustomize (imported by every spawned worker too) makes the worker that
    ingests b.mp4 exit hard, as a crash in FFmpeg or the OOM killer would."""
    src, store, hook = tmp_path / "src", tmp_path / "store", tmp_path / "hook"
    src.mkdir()
    hook.mkdir()
    for name in ("a", "b", "c"):
        make_video(src / f"{name}.mp4", frames=20, w=64, h=48)
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "from babyfast.store import ingest as m\n"
        "real = m._ingest_one\n"
        "def _ingest_one(job, progress=None):\n"
        "    if job['id'] == 'b':\n"
        "        os._exit(3)\n"
        "    return real(job, progress)\n"
        "_ingest_one.__module__ = m.__name__\n"
        "m._ingest_one = _ingest_one\n")
    out = run_cli("ingest", str(src), str(store), "--size", "32", "--gop", "4", "--workers", "2", "--no-progress",
                  env_extra={"PYTHONPATH": f"{hook}:{ROOT}"})
    assert out.returncode == 1, out.stderr
    assert "ingested 2 video(s)" in out.stdout and "b.mp4: the worker process died" in out.stdout, out.stdout
    assert sorted(read_index(store)["id"]) == ["a", "c"]
