"""Subcommands `ingest`, `inspect` and `check`."""
from __future__ import annotations

import argparse
import json
import math
import sys


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be a whole number of pixels, got {text!r}") from None
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _part(text: str) -> tuple[int, int]:
    from babyfast.store.ids import parse_part

    try:
        return parse_part(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest recordings into a GOP-chunked zarr v3 store",
                       description="Read every video under SRC (mp4, mov, mkv, webm, avi), resample to --fps, "
                                   "resize, and write GOP chunks into STORE. Re-running skips videos already "
                                   "complete (same sha256) and finishes interrupted ones.")
    p.add_argument("src", help="a folder of recordings (or one file)")
    p.add_argument("store", help="the store folder (created if missing)")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second stored (default 10)")
    p.add_argument("--size", type=_size, default=256, help="short side in pixels after resizing (default 256)")
    p.add_argument("--gop", type=int, default=16, help="frames per chunk, one closed GOP (default 16; jpeg: 1)")
    p.add_argument("--codec", default="h264", choices=["h264", "hevc", "av1", "vp9", "jpeg", "raw"])
    p.add_argument("--quality", type=int, default=None, help="codec quality (crf; jpeg q; zstd level)")
    p.add_argument("--no-crop", action="store_true", help="keep the aspect ratio instead of a centre crop")
    p.add_argument("--shard-chunks", type=int, default=32, help="GOP chunks per shard file (default 32)")
    p.add_argument("--transcripts", default=None, help="CSV video,start,end,text (default SRC/utterances.csv)")
    p.add_argument("--ages", default=None, help="CSV video,subject,age_days (default SRC/ages.csv)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--max-gap", type=_seconds, default=10.0,
                   help="seconds between two source frames beyond which the jump is skipped, not filled (default 10)")
    p.add_argument("--part", type=_part, default=None, metavar="K/N",
                   help="only share K of N of the recordings under SRC (the same share on every machine), for N "
                        "runs that each write their own store")
    p.add_argument("--wait", action="store_true",
                   help="when another ingest is writing STORE, wait for it to finish instead of refusing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("inspect", help="print what a store holds",
                       description="Videos, hours, frames, subjects, age range, codec, size on disk, compression.")
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("check", help="decode every chunk and verify checksums",
                       description="Reads every chunk (shard index and chunk crc32c), decodes it, and names any "
                                   "corrupt chunk. Exit code 1 when any is bad.")
    p.add_argument("store")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--repair", action="store_true",
                   help="first write the group metadata that folders of the hierarchy lack (stores made before "
                        "it was written), so that plain zarr-python can walk the store; takes the store's lock")
    p.set_defaults(func=_check)


def _ingest(args: argparse.Namespace) -> int:
    from babyfast.store.ingest import ingest

    try:
        result = ingest(args.src, args.store, fps=args.fps, size=args.size, gop=args.gop, codec=args.codec,
                        quality=args.quality, crop=not args.no_crop, shard_chunks=args.shard_chunks,
                        workers=args.workers, transcripts=args.transcripts, ages=args.ages,
                        progress=not args.no_progress, max_gap=args.max_gap, part=args.part,
                        wait=math.inf if args.wait else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"babyfast ingest: error: {e}", file=sys.stderr)
        return 2
    replaced = f" ({len(result.replaced)} replacing an older version from the same path)" if result.replaced else ""
    print(f"ingested {len(result.ingested)} video(s){replaced}, {result.frames} frames in {result.seconds:.1f} s; "
          f"skipped {len(result.skipped)} already complete")
    if result.ignored:
        print(f"ignored {sum(result.ignored.values())} file(s) that are not videos: "
              + ", ".join(f"{ext} {n}" for ext, n in result.ignored.items()))
    for file, vid, holder in result.renamed:
        print(f"  [renamed] {file}: stored as {vid!r}; its own id holds another recording ({holder})")
    if result.problems:
        print(f"{len(result.problems)} problem(s) (also in {args.store}/ingest_log.jsonl):")
        for p in result.problems:
            print(f"  [{p.kind}] {p.file}: {p.reason}")
    return 0 if result.ok else 1


def _inspect(args: argparse.Namespace) -> int:
    from babyfast.store.layout import StoreError
    from babyfast.store.summary import format_summary, summarize

    try:
        s = summarize(args.store)
    except StoreError as e:
        print(f"babyfast inspect: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0


def _check(args: argparse.Namespace) -> int:
    from babyfast.store.layout import StoreError
    from babyfast.store.summary import check

    try:
        if args.repair:
            from babyfast.store.layout import repair_groups, store_info
            from babyfast.store.lock import StoreLock

            store_info(args.store)  # a store, before anything is written into it
            with StoreLock(args.store, wait=None):
                for folder in repair_groups(args.store):
                    print(f"REPAIRED {folder}: wrote its group metadata")
        r = check(args.store, threads=args.threads, progress=not args.no_progress)
    except StoreError as e:
        print(f"babyfast check: error: {e}", file=sys.stderr)
        return 2
    for v, c, what in r.bad:
        where = f"video {v}" if c < 0 else f"video {v} chunk {c}"
        print(f"CORRUPT {where}: {what}")
    print(f"checked {r.chunks} chunks: {'all sound' if r.ok else f'{len(r.bad)} bad'}")
    return 0 if r.ok else 1
