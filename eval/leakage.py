"""No probe item may come from the training recordings: BabyWorld probes are checked against the run's
training store by generator seed and toy instance before anything is scored.

BabyWorld draws probe toys only from `PROBE_INSTANCES` and corpus toys from `TRAIN_INSTANCES`, from
random streams keyed apart. The check reads what actually happened: the instances the probe manifest
says it drew, and the instances the training recordings' own truth files show (the store remembers each
video's source file; BabyWorld writes `truth/<video>.npz` beside it). A probe folder inside the store's
sources (probe movies ingested for training) or an instance seen on both sides is refused.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

__all__ = ["LeakageError", "Provenance", "check_leakage"]


class LeakageError(ValueError):
    """A probe suite overlaps the run's training data; the message names what is shared."""


@dataclass
class Provenance:
    """What the check established, for the report."""

    probe_seed: int | None = None
    probe_instances: list[int] = field(default_factory=list)
    corpus_seeds: list[int] = field(default_factory=list)
    train_instances: list[int] = field(default_factory=list)
    videos_with_truth: int = 0
    videos: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LeakageError(f"{path}: cannot read it to check the probes against the training data ({e})") from e


def check_leakage(probes: str | os.PathLike[str], store: str | os.PathLike[str]) -> Provenance:
    """Raise LeakageError if the BabyWorld probe folder `probes` shares items with the training `store`."""
    import zarr

    probes = Path(probes).resolve()
    manifest = _read(probes / "probes.json")
    if manifest.get("generator") != "babyfast.synth.probes" or "instances" not in manifest:
        raise LeakageError(f"{probes}/probes.json does not say which toy instances the probes drew (written by "
                           f"an older babyfast?); regenerate the probes with babyfast synth-probes")
    prov = Provenance(probe_seed=manifest.get("seed"), probe_instances=sorted(manifest["instances"]))
    group = zarr.open_group(str(store), mode="r")
    seen: set[int] = set()
    corpora: set[Path] = set()
    for vid in cast(zarr.Group, group["videos"]).group_keys() if "videos" in group else []:
        prov.videos += 1
        source = group[f"videos/{vid}"].attrs.get("source")
        if not source:
            continue
        if not isinstance(source, str):
            raise LeakageError(f"{store}: video {vid!r} has a malformed source attribute {source!r}")
        src = Path(source).resolve()
        if probes == src or probes in src.parents:
            raise LeakageError(f"the training store {store} holds {vid!r}, ingested from {src}, inside the probe "
                               f"folder {probes}")
        truth = src.parent / "truth" / f"{src.stem}.npz"
        if truth.is_file():
            with np.load(truth, allow_pickle=False) as z:
                seen.update(int(i) for i in np.unique(z["toys"]["instance"]))
            prov.videos_with_truth += 1
            corpora.add(src.parent)
    for folder in sorted(corpora):
        if (folder / "world.json").is_file():
            seed = _read(folder / "world.json").get("seed")
            if seed is not None:
                prov.corpus_seeds.append(int(seed))
    prov.train_instances = sorted(seen)
    shared = sorted(seen & set(prov.probe_instances))
    if shared:
        raise LeakageError(f"toy instances {shared} appear both in the probes ({probes}) and in the training "
                           f"recordings of {store}: the probes are not held out")
    return prov
