"""Hostile input (issue 15): metadata claiming more than the disk holds, bad CSV rows, timestamp jumps,
huge headers, truncated files and damaged per-video metadata cost bounded work and a clear message."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import zarr

from _media import make_video, reference

import babyfast.store  # noqa: F401  (registers the chunk codec for plain zarr reads)
from babyfast.store import StoreError
from babyfast.store import _limits as limits
from babyfast.store.layout import index_row, read_index, read_log, video_attrs, write_index
from babyfast.store.ingest import ingest
from babyfast.store.summary import check

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "babyfast", *args], capture_output=True, text=True, env=ENV, **kw)


def edit_json(path: Path, edit) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        make_video(src / f"{name}.mp4", frames=60, w=64, h=48)
    r = ingest(src, tmp_path / "store", fps=10, size=32, gop=4, shard_chunks=2, codec="raw", progress=False)
    assert r.ok
    return tmp_path / "store"


# ---------------------------------------------------------------------------------------------- 3: claims

BOUNDED = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # a list of every claimed shard would hit this
from babyfast.store.summary import check
t = time.time()
r = check(sys.argv[1], progress=False)
out = {"bad": r.bad, "chunks": r.chunks}
if sys.argv[2] == "loader":
    from babyfast.loader import Augment, ClipLoader
    loader = ClipLoader(sys.argv[1], clip_len=4, batch_size=2, augment=Augment.none(), on_error="skip")
    out.update(ids=sorted({v for batch in loader for v in batch["video_id"]}), skipped=loader.skipped)
out["seconds"] = time.time() - t
print(json.dumps(out))
"""


def run_bounded(store: Path, what: str) -> dict:
    """check (and the loader) in a process with a memory ceiling and a deadline: work that follows a claim
    fails this test instead of taking the machine."""
    out = subprocess.run([sys.executable, "-c", BOUNDED, str(store), what], capture_output=True, text=True,
                         env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["seconds"] < 30
    return got


def test_a_frames_array_claiming_1e15_frames_costs_check_and_the_loader_nothing(store: Path) -> None:
    edit_json(store / "videos" / "a" / "frames" / "zarr.json", lambda m: m["shape"].__setitem__(0, 10**15))
    got = run_bounded(store, "loader")
    assert [(v, c) for v, c, _ in got["bad"]] == [("a", -1)]
    assert "frames (shape[0]) must be in [0, 2147483648], got 1000000000000000" in got["bad"][0][2]
    assert got["ids"] == ["b", "c"] and {v for v, _, _ in got["skipped"]} == {"a"}


def test_claims_that_agree_with_each_other_are_still_held_to_the_disk(store: Path) -> None:
    claim = 2_000_000_000  # within the limits; array, attributes and index agree on it; three shard files exist
    edit_json(store / "videos" / "a" / "frames" / "zarr.json", lambda m: m["shape"].__setitem__(0, claim))
    edit_json(store / "videos" / "a" / "zarr.json", lambda m: m["attributes"].update(frames=claim, chunks=claim // 4))
    write_index(store, [index_row(v, video_attrs(store, v)) for v in ("a", "b", "c")])
    got = run_bounded(store, "check")
    assert [(v, c) for v, c, _ in got["bad"]] == [("a", -1)]
    assert "videos/a/frames: the array claims 2000000000 frames in 250000000 shard files, 3 are on disk" \
        in got["bad"][0][2]
    assert got["chunks"] == 2 * 5  # b and c read whole; nothing planned for a's claim


def test_an_index_claiming_a_video_of_1e15_frames_leaves_it_out(store: Path) -> None:
    from babyfast.loader import Augment, ClipLoader

    rows = [index_row(v, video_attrs(store, v)) for v in ("a", "b", "c")]
    rows[0].update(frames=10**15, chunks=10**15 // 4)
    write_index(store, rows)
    got = run_bounded(store, "loader")
    assert [(v, c) for v, c, _ in got["bad"]] == [("a", -1)]
    assert "the index says 1000000000000000 frames" in got["bad"][0][2]
    assert got["ids"] == ["b", "c"] and got["skipped"][0][0] == "a"
    with pytest.raises(ValueError, match="video 'a': the index says 1000000000000000 frames"):
        ClipLoader(store, clip_len=4, batch_size=2, augment=Augment.none(), on_error="raise")


# ---------------------------------------------------------------------------------------------- 4: CSV

def test_a_bad_csv_row_costs_only_that_row(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    make_video(src / "b.mp4", frames=20, w=64, h=48)
    long_text = "y" * 200_000  # over Python's csv default of 131072, within our bound
    too_long = "z" * (limits.MAX_CSV_FIELD + 1)
    (src / "utterances.csv").write_text(
        "\ufeffvideo,start,end,text\n"  # as spreadsheets save UTF-8
        "a,0.1,0.5,hello\n"
        "a,0.6,0.9,one,two\n"  # a comma left unquoted: one field too many
        f"b,0.2,0.4,\"{long_text}\"\n"
        f"b,0.5,0.6,{too_long}\n"
        "b,0.7,0.8,bye\n", encoding="utf-8")
    (src / "ages.csv").write_text("\ufeffvideo,subject,age_days\na,S1,100\nb,S2,200\n", encoding="utf-8")
    r = ingest(src, tmp_path / "store", size=32, gop=4, progress=False)
    assert sorted(r.ingested) == ["a", "b"]
    reasons = sorted((Path(p.file).name, p.kind, p.reason) for p in r.problems)
    assert reasons == [
        ("utterances.csv", "csv", "line 3: 5 fields, the header has 4 (video,start,end,text); row skipped "
                                  "(quote a text that holds commas)"),
        ("utterances.csv", "csv", f"line 5: field larger than field limit ({limits.MAX_CSV_FIELD}); row skipped"),
    ]
    g = zarr.open_group(str(tmp_path / "store"), mode="r")
    assert list(g["videos/a/utterances/text"][:]) == ["hello"]
    assert list(g["videos/b/utterances/text"][:]) == [long_text, "bye"]
    idx = read_index(tmp_path / "store")
    assert list(idx["subject"]) == ["S1", "S2"] and list(idx["age_days"]) == [100.0, 200.0]
    assert sum(e.get("event") == "csv" for e in read_log(tmp_path / "store")) == 2


def test_an_unterminated_quote_is_an_error_for_its_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=20, w=64, h=48)
    (src / "utterances.csv").write_text("video,start,end,text\na,0.1,0.5,\"hello\na,0.6,0.9,bye\na,1,2,more\n")
    out = run_cli("ingest", str(src), str(tmp_path / "store"), "--size", "32", "--gop", "4", "--no-progress")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{src / 'utterances.csv'}: line 2: a quote opened in this row is never closed" in out.stderr
    assert not (tmp_path / "store").exists()  # refused before anything was written


# ---------------------------------------------------------------------------------------------- 5: sources

def test_a_100_hour_timestamp_jump_is_skipped_not_filled(tmp_path: Path) -> None:
    src, plain = tmp_path / "src", tmp_path / "plain"
    src.mkdir()
    plain.mkdir()
    # lossless, so that both files decode to the same pictures whatever their timestamps
    images = make_video(plain / "rec.mkv", frames=20, w=64, h=48, codec="ffv1", pts_ms=[33 * i for i in range(20)])
    jump = 100 * 3600 * 1000
    make_video(src / "rec.mkv", images=images, codec="ffv1", pts_ms=[33 * i + (jump if i >= 10 else 0) for i in range(20)])
    # without the bound this fills 3.6 million frames: the timeout makes that a failure, not a hang
    out = run_cli("ingest", str(src), str(tmp_path / "store"), "--size", "32", "--gop", "4", "--codec", "raw",
                  "--no-progress", timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "[damaged] " in out.stdout and "1 timestamp jump(s) longer than 10 s (360000.0 s at 0.30 s): " \
                                          "skipped, not filled" in out.stdout
    g = zarr.open_group(str(tmp_path / "store"), mode="r")
    ref, ref_times = reference(plain / "rec.mkv", fps=10, size=32)
    # the frames are those of the same recording without the jump; the stored times show the jump
    assert np.array_equal(g["videos/rec/frames"][:], ref)
    ts = g["videos/rec/timestamps"][:]
    np.testing.assert_allclose(ts[:4], ref_times[:4])
    np.testing.assert_allclose(ts[4:], ref_times[4:] + jump / 1000.0)
    assert g["videos/rec"].attrs["skipped_gaps"] == 1


def test_a_header_of_16000x16000_is_refused_before_decoding(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "fine.mp4", frames=20, w=64, h=48)
    with av.open(str(src / "huge.mkv"), "w") as c:  # a header that claims 256 megapixels, a few bytes of data
        s = c.add_stream("rawvideo", rate=10)
        s.width, s.height, s.pix_fmt = 16000, 16000, "gray"
        for i in range(3):
            p = av.Packet(bytes(1000))
            p.stream, p.pts, p.dts, p.time_base = s, i, i, Fraction(1, 10)
            c.mux(p)
    out = run_cli("ingest", str(src), str(tmp_path / "store"), "--size", "32", "--gop", "4", "--no-progress")
    assert out.returncode == 1
    assert (f"[failed] {src / 'huge.mkv'}: the header's frame size is 16000x16000, beyond what ingest reads "
            f"(sides up to {limits.MAX_SOURCE_SIDE}, {limits.MAX_SOURCE_PIXELS} pixels in all); refused") in out.stdout
    assert list(read_index(tmp_path / "store")["id"]) == ["fine"]


# ---------------------------------------------------------------------------------------------- 6: truncated

def test_a_truncated_file_is_reported_truncated_and_its_decodable_part_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(tmp_path / "whole.mp4", frames=60, w=64, h=48, container_options={"movflags": "faststart"})
    data = (tmp_path / "whole.mp4").read_bytes()
    (src / "cut.mp4").write_bytes(data[: int(len(data) * 0.3)])  # the index (moov) is first: it still opens
    out = run_cli("ingest", str(src), str(tmp_path / "store"), "--size", "32", "--gop", "4", "--no-progress")
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if "cut.mp4" in x)
    assert line.startswith(f"  [truncated] {src / 'cut.mp4'}: the container declares 2.00 s of video, ")
    assert "the file is cut short; the decodable part is stored" in line
    g = zarr.open_group(str(tmp_path / "store"), mode="r")
    assert 0 < g["videos/cut/frames"].shape[0] < 20
    assert [Path(e["file"]).name for e in read_log(tmp_path / "store") if e.get("event") == "truncated"] == ["cut.mp4"]


# ---------------------------------------------------------------------------------------------- 7: metadata

def test_the_loader_skips_videos_with_damaged_timestamps_and_check_names_them(store: Path) -> None:
    from babyfast.loader import Augment, ClipLoader

    (store / "videos" / "a" / "timestamps" / "zarr.json").write_text("{ garbage")
    g = zarr.open_group(str(store / "videos" / "b"), mode="a")
    g.create_array("timestamps", data=np.arange(5, dtype=np.float64), overwrite=True)  # 5 times for 20 frames
    r = check(store, progress=False)
    found = {v: what for v, c, what in r.bad}
    assert sorted(found) == ["a", "b"] and all(c == -1 for _, c, _ in r.bad)
    assert "timestamps/zarr.json: not valid JSON" in found["a"]
    assert "timestamps/zarr.json: holds 5 values, the video has 20 frames" in found["b"]
    out = run_cli("check", str(store), "--no-progress")
    assert out.returncode == 1 and "all sound" not in out.stdout
    # 15 clips: the replacement walk's step shares no factor with the epoch, so it reaches the good ones
    loader = ClipLoader(store, clip_len=4, batch_size=2, augment=Augment.none(), on_error="skip")
    assert {v for batch in loader for v in batch["video_id"]} == {"c"}
    assert {v for v, _, _ in loader.skipped} == {"a", "b"}


def test_a_root_gop_of_zero_is_refused_by_check_and_the_loader(store: Path) -> None:
    from babyfast.loader import ClipLoader

    edit_json(store / "zarr.json", lambda m: m["attributes"]["babyfast"].update(gop=0))
    out = run_cli("check", str(store), "--no-progress")
    assert out.returncode == 2 and "malformed 'babyfast' attribute (gop must be in [1, 1024], got 0)" in out.stderr
    with pytest.raises(StoreError, match=r"gop must be in \[1, 1024\], got 0"):
        ClipLoader(store, clip_len=4, batch_size=2)
