"""The CSV files beside the recordings: transcripts (`video,start,end,text`) and ages (`video,subject,age_days`).

A bad row costs that row: it is reported with its file and line and the other rows are used. What makes
the rest of a file unreadable (no such columns, not UTF-8, a quote that never closes, which would swallow
every row after it into one field) is an error for the whole file, raised before ingest writes anything:
a video ingested without its age is skipped by the next run (same sha256), so it would never get it.
Spreadsheets' UTF-8 byte order mark is accepted; a field may hold up to `limits.MAX_CSV_FIELD` characters.
"""
from __future__ import annotations

import csv
import logging
import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babyfast.store import _limits as limits

log = logging.getLogger(__name__)

__all__ = ["AGES_COLUMNS", "TRANSCRIPT_COLUMNS", "Sidecar", "ages", "read_sidecar", "transcripts"]

TRANSCRIPT_COLUMNS = ("video", "start", "end", "text")
AGES_COLUMNS = ("video", "subject", "age_days")


@dataclass
class Sidecar:
    """The rows of one CSV file that parsed, each with its `_line`, and what was wrong with the others."""

    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "line N: what is wrong"


def read_sidecar(path: str | Path, columns: tuple[str, ...]) -> Sidecar:
    """Parse a CSV file with (at least) `columns`; ValueError naming the file for a file-level error."""
    path = Path(path)
    out = Sidecar(path)
    # csv's field limit is process-wide: raised for this file only
    old_limit = csv.field_size_limit(limits.MAX_CSV_FIELD)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            header: list[str] | None = None
            while True:
                line = reader.line_num + 1  # where the next record starts
                try:
                    record = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    if "unexpected end of data" in str(e):
                        raise ValueError(f"{path}: line {line}: a quote opened in this row is never closed, so "
                                         f"every row after it would be read as part of one field; close it "
                                         f"(write a quote inside a quoted field as \"\")") from None
                    if header is None:
                        raise ValueError(f"{path}: line {line}: unreadable header ({e})") from None
                    out.problems.append(f"line {line}: {e}; row skipped")
                    continue
                if not any(x.strip() for x in record):
                    continue
                if header is None:
                    header = [h.strip() for h in record]
                    missing = [c for c in columns if c not in header]
                    if missing:
                        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}; "
                                         f"expected {','.join(columns)}")
                    continue
                if len(record) != len(header):
                    out.problems.append(f"line {line}: {len(record)} fields, the header has {len(header)} "
                                        f"({','.join(header)}); row skipped (quote a text that holds commas)")
                    continue
                row = {h: v.strip() for h, v in zip(header, record, strict=True)}
                empty = [c for c in columns if c != "text" and row[c] == ""]
                if empty:
                    out.problems.append(f"line {line}: empty field(s) {', '.join(empty)}; row skipped")
                    continue
                row["_line"] = str(line)
                out.rows.append(row)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from e
    finally:
        csv.field_size_limit(old_limit)
    return out


def _match(sidecar: Sidecar, lookup: dict[str, set[str]],
           elsewhere: AbstractSet[str]) -> tuple[dict[str, list], list[str]]:
    """Group rows by store id; a row may name the id, the relative path or the file name. A name that fits
    several recordings (day1.mp4 in two folders) is reported, never guessed. Rows of recordings that
    another part of a split ingest (`--part`) takes are left to it, quietly."""
    out: dict[str, list] = {}
    problems = []
    for row in sidecar.rows:
        key = row["video"]
        found = lookup.get(key) or lookup.get(Path(key).with_suffix("").as_posix()) or set()
        if len(found) != 1:
            what = f"names unknown video {key!r}" if not found else \
                f"{key!r} fits several recordings ({', '.join(sorted(found))}); name one by its path"
            problems.append(f"line {row['_line']}: {what}")
            continue
        vid = next(iter(found))
        if vid not in elsewhere:
            out.setdefault(vid, []).append(row)
    return out, problems


def transcripts(
    sidecar: Sidecar, lookup: dict[str, set[str]], elsewhere: AbstractSet[str] = frozenset()
) -> tuple[dict[str, list[tuple[float, float, str]]], list[str]]:
    """Utterances per video id, and the file's problems ("line N: ...")."""
    grouped, problems = _match(sidecar, lookup, elsewhere)
    utterances: dict[str, list[tuple[float, float, str]]] = {}
    for vid, rows in grouped.items():
        for r in rows:
            try:
                start, end = float(r["start"]), float(r["end"])
                if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
                    raise ValueError(f"start {r['start']} and end {r['end']} must satisfy 0 <= start <= end")
            except ValueError as e:
                problems.append(f"line {r['_line']}: {e}")
                continue
            utterances.setdefault(vid, []).append((start, end, r["text"]))
    return utterances, sidecar.problems + problems


def ages(sidecar: Sidecar, lookup: dict[str, set[str]],
         elsewhere: AbstractSet[str] = frozenset()) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Subject and age in days per video id, and the file's problems ("line N: ...")."""
    grouped, problems = _match(sidecar, lookup, elsewhere)
    meta: dict[str, dict[str, Any]] = {}
    for vid, rows in grouped.items():
        if len(rows) > 1:
            lines = ", ".join(x["_line"] for x in rows)
            problems.append(f"lines {lines}: several rows for video {vid!r}; using the last")
        r = rows[-1]
        try:
            age = float(r["age_days"])
            if not (age >= 0 and math.isfinite(age)):
                raise ValueError
        except ValueError:
            problems.append(f"line {r['_line']}: age_days must be a non-negative number, got {r['age_days']!r}")
            continue
        meta[vid] = {"subject": r["subject"], "age_days": age}
    return meta, sidecar.problems + problems
