"""Labeled-S (Orhan et al. 2020; the 4-way evaluation of CVCL, Vong et al. 2024, Science 383:504):
frames of child S's SAYCam recordings in category folders, scored as 4-way trials (a word and four
frames, one of which shows it).

Layout of DIR (``--labeled-s DIR``):

- one folder per category, holding that category's frames (JPEG or PNG, any size): in CVCL's
  evaluation data ``eval/dev/<category>/*.jpg`` and ``eval/test/<category>/*.jpg``, 22 categories
  (Labeled-S's 26 less carseat, couch, greenery and plushanimal, which CVCL drops);
- the trial list in CVCL's evaluation format (``multimodal/multimodal_saycam_data_module.py`` of
  github.com/wkvong/multimodal-baby writes it as ``eval_dev.json`` / ``eval_test.json``)::

      {"data": [{"trial_num": 0, "target_category": "ball",
                 "target_img_filename": ".../ball/img_1.jpg",
                 "foil_categories": ["cat", "car", "crib"],
                 "foil_img_filenames": [".../cat/img_7.jpg", ".../car/img_3.jpg", ".../crib/img_9.jpg"]},
                ...]}

  named ``trials.json``, ``eval_test.json`` or ``eval_dev.json`` in DIR (exactly one of them; with
  several, pass the list itself: ``--labeled-s DIR/eval_test.json``, and DIR is its folder).

File names in the list may be relative to DIR or absolute. CVCL's lists hold the authors' absolute
paths (``/misc/vlgscratch4/.../S_multimodal/eval/dev/ball/img_1.jpg``); an absolute path that does not
exist here is looked up under DIR by its trailing components, longest first (``eval/dev/ball/img_1.jpg``,
``dev/ball/img_1.jpg``, ``ball/img_1.jpg``), so the published lists work unchanged wherever DIR is.
Every frame must lie in a folder named for the category the list gives it.

What becomes of it: one `Trial` per entry (``trial_num`` repeats across categories in CVCL's lists, so
the id is the entry's position), the query is the target category, the stimuli are the target and the
foils, ``labels`` the category of each frame. CVCL's list always puts the target first; here the
target's position is balanced over the trials in a seeded order (see `_files.balanced_positions`).
Chance is 1 / (1 + number of foils), 25% for CVCL's lists.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..suites import Suite, Trial, read_json
from . import _files

__all__ = ["load", "TRIAL_LISTS"]

log = logging.getLogger(__name__)

TRIAL_LISTS = ("trials.json", "eval_test.json", "eval_dev.json")
_KEYS = ("target_category", "target_img_filename", "foil_categories", "foil_img_filenames")
_SEED = 0x1ABE15


def _trial_list(path: Path) -> tuple[Path, Path]:
    """(root folder, trial list file) from DIR or from the list itself."""
    if path.is_file():
        return path.parent, path
    root = _files.folder(path, "Labeled-S")
    found = [root / n for n in TRIAL_LISTS if (root / n).is_file()]
    if not found:
        raise ValueError(f"{root}: no Labeled-S trial list (expected one of {list(TRIAL_LISTS)} in CVCL's "
                         f"evaluation format)")
    if len(found) > 1:
        raise ValueError(f"{root}: several trial lists {[p.name for p in found]}; pass the one to score, "
                         f"e.g. --labeled-s {found[0]}")
    return root, found[0]


def _candidates(root: Path, name: str) -> list[Path]:
    p = Path(name)
    if not p.is_absolute():
        return [root / p]
    parts = p.parts[1:]
    # The path as given first, then its trailing components under root: bounded by the path's depth.
    return [p] + [root.joinpath(*parts[-k:]) for k in range(len(parts) - 1, 1, -1)]


def _frame(root: Path, name: str, category: str, where: str) -> str:
    cands = _candidates(root, name)
    hit = next((c for c in cands if c.is_file()), None)
    if hit is None:
        folders = [c.parent for c in cands if c.parent.is_dir()]
        if not folders:
            raise ValueError(f"{where}: category folder for {category!r} absent (looked for "
                             f"{sorted({str(c.parent) for c in cands})})")
        raise ValueError(f"{where}: image file {name!r} referenced but absent from {folders[0]}")
    if hit.parent.name != category:
        raise ValueError(f"{where}: {hit} is listed as category {category!r} but lies in folder "
                         f"{hit.parent.name!r}")
    return str(hit)


def load(path: str | Path) -> Suite:
    """The Labeled-S suite in `path` (a folder, or its trial list file)."""
    root, listing = _trial_list(Path(path))
    doc = read_json(listing, "Labeled-S trial list")
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ValueError(f"{listing}: expected CVCL's evaluation format {{\"data\": [trials]}}, got "
                         f"{type(doc).__name__}{' without a data list' if isinstance(doc, dict) else ''}")
    data = _files.nonempty(data, listing, "trials")
    positions = _files.balanced_positions(len(data), 4, _SEED)
    trials, categories = [], set()
    for i, d in enumerate(data):
        where = f"{listing} trial {i}"
        _files.require(d, _KEYS, where)
        target = _files.text(d["target_category"], where, "target_category")
        foil_cats = _files.strings(d["foil_categories"], where, "foil_categories")
        foil_imgs = _files.strings(d["foil_img_filenames"], where, "foil_img_filenames")
        if len(foil_cats) != len(foil_imgs):
            raise ValueError(f"{where}: {len(foil_imgs)} foil images but {len(foil_cats)} foil categories")
        if target in foil_cats:
            raise ValueError(f"{where}: target category {target!r} is also a foil category")
        frames = [_frame(root, _files.text(d["target_img_filename"], where, "target_img_filename"), target, where)]
        frames += [_frame(root, f, c, where) for f, c in zip(foil_imgs, foil_cats, strict=True)]
        labels = [target, *foil_cats]
        k = int(positions[i]) % len(frames)
        order = [*range(1, k + 1), 0, *range(k + 1, len(frames))]  # the target moved to position k
        trials.append(Trial(f"labeled_s/{i}", target, tuple(range(len(frames))), tuple(frames[j] for j in order),
                            k, tuple(labels[j] for j in order)))
        categories.update(labels)
    if len(categories) < 2:
        raise ValueError(f"{listing}: the trials name only {sorted(categories)}; a choice needs 2 categories")
    if len(categories) != 22:
        log.info("%s: %d categories (CVCL's Labeled-S evaluation has 22)", listing, len(categories))
    return Suite("labeled_s", root, trials, "choice")
