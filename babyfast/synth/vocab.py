"""The toy categories of BabyWorld and the words caregivers use for them.

One vocabulary serves the utterances of the corpus and the word–referent probes, so that a word a model
hears in training is the word it is tested on. Each category has a distinct shape family (drawn in
`babyfast.synth._toys`); instances of a category differ in colour, texture and proportions. Instances
`TRAIN_INSTANCES` appear in training recordings, `PROBE_INSTANCES` only in probes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from babyfast._atomic import atomic_open

__all__ = [
    "Category",
    "CATEGORIES",
    "TRAIN_INSTANCES",
    "PROBE_INSTANCES",
    "VOCAB_FILE",
    "category_by_word",
    "write_vocabulary",
    "read_vocabulary",
]

VOCAB_FILE = "vocab.csv"


@dataclass(frozen=True)
class Category:
    """A toy category: its id, the word caregivers say for it, and how it moves.

    `motion` is "spin" (rolls far and turns as it rolls: balls), "glide" (rolls far without turning: a
    car on its wheels) or "slide" (stops quickly). `palette` is "any" (instances take any toy colour) or
    a fixed family of hues the category keeps (bananas stay yellow).
    """

    id: int
    word: str
    motion: str
    palette: str

    @property
    def spins(self) -> bool:
        """Whether it turns as it rolls (so its sprite is drawn at an angle)."""
        return self.motion == "spin"

    @property
    def rolls(self) -> bool:
        """Whether a push sends it far (it spins or glides) rather than sliding to a stop."""
        return self.motion != "slide"


_SPEC = (
    ("ball", "spin", "any"),
    ("block", "slide", "any"),
    ("duck", "slide", "duck"),
    ("car", "glide", "any"),
    ("cup", "slide", "any"),
    ("star", "slide", "warm"),
    ("ring", "spin", "any"),
    ("teddy", "slide", "brown"),
    ("banana", "slide", "yellow"),
    ("apple", "spin", "apple"),
    ("fish", "slide", "any"),
    ("boat", "slide", "any"),
    ("house", "slide", "any"),
    ("tree", "slide", "green"),
    ("bottle", "slide", "any"),
    ("shoe", "slide", "any"),
    ("key", "slide", "metal"),
    ("spoon", "slide", "any"),
    ("heart", "slide", "red"),
    ("hat", "slide", "any"),
    ("drum", "glide", "any"),
    ("book", "slide", "any"),
    ("flower", "slide", "any"),
    ("butterfly", "slide", "any"),
)

CATEGORIES: tuple[Category, ...] = tuple(Category(i, w, r, p) for i, (w, r, p) in enumerate(_SPEC))
TRAIN_INSTANCES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
PROBE_INSTANCES: tuple[int, ...] = (6, 7)

_BY_WORD = {c.word: c for c in CATEGORIES}


def category_by_word(word: str) -> Category:
    """The category a toy word names; ValueError listing the vocabulary for an unknown word."""
    try:
        return _BY_WORD[word]
    except KeyError:
        raise ValueError(f"unknown toy word {word!r}; the vocabulary is {sorted(_BY_WORD)}") from None


def write_vocabulary(path: str | Path) -> Path:
    """Write the vocabulary CSV (`word,category_id,motion,train_instances,probe_instances`) to `path`.

    `path` may be a folder (the file is then `vocab.csv` inside it).
    """
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["word", "category_id", "motion", "train_instances", "probe_instances"])
        for c in CATEGORIES:
            w.writerow(
                [c.word, c.id, c.motion, " ".join(map(str, TRAIN_INSTANCES)), " ".join(map(str, PROBE_INSTANCES))]
            )
    return path


def read_vocabulary(path: str | Path) -> list[str]:
    """The toy words of a vocabulary CSV (file or folder holding `vocab.csv`), in category-id order."""
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "word" not in rows[0] or "category_id" not in rows[0]:
        raise ValueError(f"{path}: not a vocabulary file (needs columns word, category_id)")
    return [r["word"] for r in sorted(rows, key=lambda r: int(r["category_id"]))]
