"""BabyVLM's Visual Two-Word Test (Wang et al. 2025, "BabyVLM: Data-Efficient Pretraining of VLMs
Inspired by Infant Learning", arXiv:2504.09426): a SAYCam frame and two two-word phrases, one that
describes it ("wash cup") and a foil that differs in one word ("fill cup"). Which phrase goes with
the frame?

Layout of DIR (``--two-word DIR``), as the BabyVLM evaluation code has it (``dataset/vtwt/`` of
github.com/ShawnKing98/babylmms-eval):

- ``vtwt.csv`` with the header ``image,positive_phrase,negative_phrase``, one item a row, e.g.
  ``S_20140409_1723_04_024_05.jpg,wash cup,fill cup`` (``--two-word DIR/vtwt.csv`` works too);
- ``images/``: the frames the rows name (BabyVLM links its copy of the SAYCam frames there); a name
  not found in ``images/`` is looked for in DIR itself.

What becomes of it: one `Trial` per row with no query word; the two phrases are the choices, the one
frame the stimulus, the answer the position of the describing phrase. BabyVLM's file always lists the
describing phrase first; here its position is balanced over the items in a seeded order. The
contrastive protocol embeds both phrases with the text tower and picks the one closer (cosine) to the
frame's clip embedding. Chance is 50%.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..suites import Suite, Trial
from . import _files

__all__ = ["load", "COLUMNS"]

COLUMNS = ("image", "positive_phrase", "negative_phrase")
_FILE = "vtwt.csv"
_SEED = 0x7770


def _rows(listing: Path) -> list[dict[str, str]]:
    try:
        with listing.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{listing}: missing columns {missing} (header {header}; expected "
                                 f"{','.join(COLUMNS)})")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{listing}: cannot read the Visual Two-Word Test item list ({e})") from e


def load(path: str | Path) -> Suite:
    """The Visual Two-Word Test in `path` (a folder holding vtwt.csv, or vtwt.csv itself)."""
    p = Path(path)
    root, listing = (p.parent, p) if p.is_file() else (_files.folder(p, "Visual Two-Word Test"), p / _FILE)
    if not listing.is_file():
        raise ValueError(f"{root}: no {_FILE} (the Visual Two-Word Test item list, columns {','.join(COLUMNS)})")
    rows = _files.nonempty(_rows(listing), listing, "items")
    positions = _files.balanced_positions(len(rows), 2, _SEED)
    trials = []
    for i, row in enumerate(rows):
        where = f"{listing} line {i + 2}"  # line 1 is the header
        image, good, bad = (_files.text(row.get(c), where, c) for c in COLUMNS)
        if good == bad:
            raise ValueError(f"{where}: the two phrases are the same ({good!r})")
        frame = next((c for c in (root / "images" / image, root / image) if c.is_file()), None)
        if frame is None:
            raise ValueError(f"{where}: image file {image!r} referenced but absent from {root / 'images'} "
                             f"and {root}")
        k = int(positions[i])
        phrases = (good, bad) if k == 0 else (bad, good)
        trials.append(Trial(f"two_word/{i}", None, phrases, (str(frame),), k))
    return Suite("two_word", root, trials, "choice")
