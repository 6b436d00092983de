"""The output folder of a generator (a corpus, probe suites): its manifest, and which entries are ours.

A generator writes into a folder that must be empty or hold only what an earlier run of the same
generator wrote there, as its manifest lists. Anything else makes it refuse, naming what it found,
before it changes anything: a mistyped path must never cost a user's files.
"""
from __future__ import annotations

import json
from pathlib import Path

from babyfast._atomic import temp_target

__all__ = ["entry_is_file", "listed", "read_manifest", "refuse_foreign", "usable_folder"]


def read_manifest(path: Path, generator: str) -> dict | None:
    """The manifest at `path` if `generator` wrote it; None if it is missing, unreadable or another's."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("generator") == generator else None


def usable_folder(out: Path) -> bool:
    """Whether `out` exists (as a folder); FileExistsError if it is something else."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    return out.exists()


def listed(name: str, names: set[str]) -> bool:
    """`name` is one of `names`, or a temporary file left by an atomic write of one of them."""
    return name in names or temp_target(name) in names


def entry_is_file(p: Path) -> bool:
    """A file or a link: what may be deleted as ours (a real folder of that name is not ours)."""
    return p.is_symlink() or not p.is_dir()


def refuse_foreign(out: Path, foreign: list[Path], what: str, thing: str) -> None:
    """FileExistsError naming (the first few of) `foreign`, entries of `out` that are not `what`."""
    if not foreign:
        return
    shown = ", ".join(str(p) for p in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    raise FileExistsError(
        f"{out}: holds {len(foreign)} file(s) that are not {what} ({shown}); write the {thing} into an empty "
        "folder (nothing was changed)"
    )
