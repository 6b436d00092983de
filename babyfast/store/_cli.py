"""Subcommands `ingest`, `inspect` and `check`."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def _parser(kind: type, flag: str):
    """Text to a number of `kind` for option `flag`; whether the number is in range is IngestOptions.validate's
    to say (one place for the API and the CLI)."""
    what = {int: "a whole number", float: "a number"}[kind]

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects {what}, got {text!r}") from None

    return parse


def _add_options(p: argparse.ArgumentParser) -> None:
    """One flag per field of IngestOptions: `--<name>` (metadata["flag"] for a switch), its help, default
    and choices from the dataclass."""
    import dataclasses

    from babyfast.store.ingest import IngestOptions

    for f in dataclasses.fields(IngestOptions):
        meta = f.metadata
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if type_name == "bool":  # a switch that turns the default off: --no-crop
            p.add_argument(meta["flag"], dest=f.name, action="store_false", help=meta["help"])
            continue
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        kind = float if type_name == "float" else int if type_name.startswith("int") else str
        extra: dict[str, Any] = {"choices": list(meta["choices"])} if "choices" in meta else {}
        shown = ("" if f.default is None
                 else f" (default {f.default:g})" if kind is not str else f" (default {f.default})")
        p.add_argument(flag, dest=f.name, default=f.default, help=meta["help"] + shown,
                       type=_parser(kind, flag) if kind is not str else str, **extra)


def _part(text: str) -> tuple[int, int]:
    from babyfast.store._ids import parse_part

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
    _add_options(p)
    p.add_argument("--transcripts", default=None, help="CSV video,start,end,text (default SRC/utterances.csv)")
    p.add_argument("--ages", default=None, help="CSV video,subject,age_days (default SRC/ages.csv)")
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
    import dataclasses

    from babyfast.store.ingest import IngestOptions, ingest

    try:
        options = IngestOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(IngestOptions)})
        result = ingest(args.src, args.store, options, transcripts=args.transcripts, ages=args.ages,
                        progress=not args.no_progress, part=args.part, wait=math.inf if args.wait else None)
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
            from babyfast.store._lock import StoreLock
            from babyfast.store.layout import repair_groups, store_info

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
