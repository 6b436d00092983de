"""IntPhys 2019 (Riochet et al., "IntPhys: A Framework and Benchmark for Visual Intuitive Physics
Reasoning"), its dev set: violation of expectation over quadruplets of movies. Two movies of each
quadruplet are possible, two impossible, built from the same frames; a model must find the possible
ones less surprising (IntPhys's relative error). Blocks: O1 object permanence, O2 shape constancy,
O3 spatio-temporal continuity; the block is each trial's `group`, reported separately.

Layout of DIR (``--intphys DIR``: the extracted ``dev/`` folder of download.intphys.com/dev.tar.gz):

- block folders ``O1/``, ``O2/``, ``O3/`` (those present are read; at least one);
- in each, one folder per quadruplet (``O1/07/``), holding exactly four movie folders ``1/`` .. ``4/``;
- in each movie, ``status.json`` and the frames ``scene/scene_001.png`` .. (``depth/`` and
  ``masks/`` are ignored). Whether the movie is possible: ``status["header"]["is_possible"]`` as in
  the IntPhys dev files, or a top-level ``"possible"`` as BabyWorld's permanence suite writes it.

Verified against readers of the dev set (e.g. github.com/rronan/IntPhys-verify-quadruplets): the
``header.is_possible`` key, ``scene/*.png`` frames, movies ``1``..``4``. Frames are ordered by the
number in their name.

What becomes of it: one `Trial` per quadruplet, its four movies (tuples of frame paths) the stimuli,
the answer the indices of the two possible movies, judged "relative" (chance 50%).
"""
from __future__ import annotations

from pathlib import Path

from ..suites import Suite, Trial, read_json
from . import _files

__all__ = ["load", "BLOCKS"]

BLOCKS = ("O1", "O2", "O3")
_MOVIES = ("1", "2", "3", "4")


def _possible(status_path: Path) -> bool:
    status = read_json(status_path, "movie status")
    header = status.get("header") if isinstance(status, dict) else None
    if isinstance(header, dict) and "is_possible" in header:
        value = header["is_possible"]
    elif isinstance(status, dict) and "possible" in status:
        value = status["possible"]
    else:
        raise ValueError(f"{status_path}: no header.is_possible (nor possible) saying whether the movie is possible")
    if not isinstance(value, bool):
        raise ValueError(f"{status_path}: is_possible must be true or false, got {value!r}")
    return value


def _frames(movie: Path) -> tuple[str, ...]:
    scene = movie / "scene"
    frames = [p for p in scene.glob("*.png") if p.is_file()] if scene.is_dir() else []
    if not frames:
        raise ValueError(f"{scene}: no scene frames (*.png)")
    return tuple(str(p) for p in sorted(frames, key=lambda p: _files.natural_key(p.name)))


def _quadruplet(block: str, qdir: Path) -> Trial:
    movies = _files.subfolders(qdir)
    if sorted(m.name for m in movies) != list(_MOVIES):
        raise ValueError(f"{qdir}: a quadruplet holds 4 movies {list(_MOVIES)}, found {[m.name for m in movies]}")
    movies = [qdir / m for m in _MOVIES]
    possible = tuple(k for k, m in enumerate(movies) if _possible(m / "status.json"))
    if len(possible) != 2:
        raise ValueError(f"{qdir}: {len(possible)} of its movies are possible "
                         f"({[movies[k].name for k in possible]}); a quadruplet has 2")
    return Trial(f"intphys/{block}/{qdir.name}", None, _MOVIES, tuple(_frames(m) for m in movies), possible,
                 group=block)


def load(path: str | Path) -> Suite:
    """The IntPhys suite in the folder `path` (the dev set's root, holding O1/ O2/ O3/)."""
    root = _files.folder(path, "IntPhys")
    blocks = [b for b in BLOCKS if (root / b).is_dir()]
    if not blocks:
        raise ValueError(f"{root}: no IntPhys block folder {list(BLOCKS)}")
    trials = []
    for block in blocks:
        quads = sorted(_files.subfolders(root / block), key=lambda p: _files.natural_key(p.name))
        trials += _files.nonempty((_quadruplet(block, q) for q in quads), root / block, "quadruplet folders")
    return Suite("intphys", root, trials, "relative")
