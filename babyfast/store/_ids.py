"""Which recordings an ingest takes, and the store id each one gets.

An id is the recording's path below SRC without its extension (`kid1/day1.mp4` -> `kid1__day1`). Two
different recordings can claim one id: `srcA/day1.mp4` ingested, then `srcB/day1.mp4`. A stored video is
replaced only by the same source path with new content (reported as replaced); the same content from
another path is the same recording (skipped); other content from another path is another recording and
gets the id `<id>~<first 12 hex digits of its sha256>` ("~" is never part of an id made from a path), so
nothing stored is ever lost to a name clash and a re-run finds the same id again.

`--part K/N` splits the recordings of SRC over N runs (N machines writing N stores) by a hash of each
path below SRC: the same share on every machine and every re-run, whatever the listing order, and a
recording added later does not move the others.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babyfast.store.recording import sha256_file

log = logging.getLogger(__name__)

__all__ = ["Assignment", "assign_ids", "in_part", "parse_part", "video_id"]

_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")
CLASH_SEPARATOR = "~"


def video_id(src_root: Path, path: Path) -> str:
    """A store id for a recording: its path below SRC without extension, '/' -> '__', safe characters."""
    rel = path.relative_to(src_root).with_suffix("")
    return "__".join(_ID_BAD.sub("_", part) for part in rel.parts)


def parse_part(text: str) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) -> (K, N); ValueError saying what is allowed otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise ValueError(f"part must be K/N with 1 <= K <= N (this run's share of N), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def in_part(rel: Path, part: tuple[int, int]) -> bool:
    """Whether the recording at `rel` (its path below SRC) belongs to part K of N."""
    k, n = part
    digest = hashlib.sha256(rel.as_posix().encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


@dataclass
class Assignment:
    """What to do with one recording."""

    path: Path
    id: str
    existing_sha: str | None = None  # the stored video under `id`, when there is one
    sha: str | None = None  # known already when the id had to be decided by content
    skip: str | None = None  # why nothing is to be done (the same content is stored from another path)
    clash: str | None = None  # the source of the stored (or earlier) recording whose id this one could not take
    failed: str | None = None  # why it cannot be ingested at all


def _resolved(p: Path) -> str:
    try:
        return str(p.resolve())
    except OSError:
        return str(p.absolute())


def assign_ids(sources: list[Path], base: Path, existing: dict[str, dict[str, Any]]) -> list[Assignment]:
    """Ids for `sources` (sorted; below `base`) against the store's videos (`existing`: id -> attributes).

    Only a recording whose id is taken by another file is read in full here (for its sha256).
    """
    by_source = {str(a["source"]): v for v, a in existing.items() if isinstance(a.get("source"), str)}
    taken: dict[str, str] = {}  # id -> the source given it in this run
    out: list[Assignment] = []
    for p in sources:
        here = _resolved(p)
        vid = video_id(base, p)
        if here in by_source:  # the same file as before: keep its id (replaced when its content changed)
            vid = by_source[here]
            if vid in taken:  # two names of one file (a link)
                out.append(Assignment(p, vid, failed=f"the same file as {taken[vid]}"))
                continue
            out.append(Assignment(p, vid, existing_sha=existing[vid].get("sha256")))
            taken[vid] = here
            continue
        if vid in taken:
            holder = taken[vid]
        elif vid in existing:
            holder = existing[vid].get("source") or "a recording of unknown source"
        else:
            holder = None
        if holder is None:
            out.append(Assignment(p, vid))
            taken[vid] = here
            continue
        try:
            sha = sha256_file(p)
        except OSError as e:
            out.append(Assignment(p, vid, failed=f"cannot read: {e.strerror or e}"))
            continue
        if vid in existing and existing[vid].get("sha256") == sha:
            out.append(Assignment(p, vid, sha=sha, skip=f"the same recording as video {vid!r} (from {holder})"))
            continue
        alt = f"{vid}{CLASH_SEPARATOR}{sha[:12]}"
        if alt in taken:
            out.append(Assignment(p, alt, failed=f"the same content as {taken[alt]} in this run"))
            continue
        if alt in existing and existing[alt].get("sha256") not in (None, sha):
            out.append(Assignment(p, alt, failed=f"id {vid!r} holds {holder} and id {alt!r} holds "
                                                 f"{existing[alt].get('source')}; rename this file"))
            continue
        out.append(Assignment(p, alt, existing_sha=existing.get(alt, {}).get("sha256"), sha=sha, clash=holder))
        taken[alt] = here
    return out
