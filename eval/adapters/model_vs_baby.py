"""ModelVsBaby (Sheybani et al. 2024; cogai.luddy.indiana.edu/projects/modelvsbaby.html): the
object-recognition task toddlers did, 8 familiar categories shown in 5 image conditions — realistic
photographs, silhouettes, geons (simple volumetric parts), blurred images and sparse feature patches.
The condition is each trial's `group`, so the report gives every condition its own accuracy.

Layout of DIR (``--model-vs-baby DIR``), as the loader of github.com/Aubret/BabyML
(``datasets/babymodel.py``) reads the released images:

- five condition folders ``blurred/``, ``features/``, ``geons/``, ``realistic/``, ``silhouette/``;
- in each, image files (JPEG or PNG) whose file name contains the category, one of airplane, car,
  chair, cup, dog, donkey, duck, hat (``realistic/Dog3.jpg``; matched case-insensitively). Assumed as
  well, since sorted copies circulate: category subfolders, ``realistic/dog/3.jpg``.

What becomes of it: one `Trial` per image, the answer its category (an index into the 8 categories),
the group its condition. The children chose the named object from a small array; a frozen encoder is
scored here by the linear probe instead (trained on a seeded half of all images, every condition
mixed, scored on the other half), so chance is 1/8.
"""
from __future__ import annotations

from pathlib import Path

from ..suites import Suite, Trial
from . import _files

__all__ = ["load", "CATEGORIES", "CONDITIONS"]

CATEGORIES = ("airplane", "car", "chair", "cup", "dog", "donkey", "duck", "hat")
CONDITIONS = ("blurred", "features", "geons", "realistic", "silhouette")


def _category(image: Path, named: str) -> str:
    """The one category `named` (a file or folder name) contains."""
    hits = [c for c in CATEGORIES if c in named.lower()]
    if len(hits) != 1:
        what = "names no category" if not hits else f"names several categories {hits}"
        raise ValueError(f"{image}: the file name {what}; expected exactly one of {list(CATEGORIES)}")
    return hits[0]


def _images(condition_dir: Path) -> list[tuple[Path, str]]:
    out = [(p, _category(p, p.stem)) for p in _files.images_in(condition_dir)]
    for sub in _files.subfolders(condition_dir):
        if sub.name.lower() not in CATEGORIES:
            raise ValueError(f"{sub}: not a category folder; expected one of {list(CATEGORIES)}")
        out += [(p, sub.name.lower()) for p in _files.images_in(sub)]
    if not out:
        raise ValueError(f"{condition_dir}: no images (.jpg, .jpeg, .png) in the condition folder")
    return out


def load(path: str | Path) -> Suite:
    """The ModelVsBaby suite in the folder `path`."""
    root = _files.folder(path, "ModelVsBaby")
    absent = [c for c in CONDITIONS if not (root / c).is_dir()]
    if absent:
        raise ValueError(f"{root}: condition folders {absent} absent; ModelVsBaby has {list(CONDITIONS)}")
    trials = []
    for condition in CONDITIONS:
        for image, category in _images(root / condition):
            rel = image.relative_to(root).as_posix()
            trials.append(Trial(f"model_vs_baby/{rel}", None, CATEGORIES, (str(image),),
                                CATEGORIES.index(category), (category,), condition))
    seen = {t.labels[0] for t in trials}
    if len(seen) < 2:
        raise ValueError(f"{root}: every image shows {sorted(seen)}; the probe needs at least 2 categories")
    return Suite("model_vs_baby", root, trials, "choice")
