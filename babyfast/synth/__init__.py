"""BabyWorld: a procedural infant's-eye video world that ships with babyfast, and its milestone probes.

- `write_corpus(out, ...)` renders recordings (plus `utterances.csv`, `ages.csv`, per-frame truth) in
  the folder layout `babyfast ingest` reads (`babyfast synth OUT` on the command line).
- `write_probes(out, ...)` writes held-out probe suites with answer keys (`babyfast synth-probes OUT`);
  `babyfast.eval` reads them back (`load_suite`, `score`) and scores models on them.
- `load_truth(path)` reads a recording's ground truth.

See `corpus`, `probes` and `truth` for the file layouts. Names are imported on first use, so that the
command line (which imports `babyfast.synth._cli`) starts without loading numpy.

Example::

    from babyfast.synth import write_corpus, write_probes
    write_corpus("demo/world", children=2, hours=0.02, size=128)
    write_probes("demo/probes", size=128, trials=60, quads=12)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load on first use
    from .corpus import Corpus, RecordingInfo, parse_size, plan_corpus, write_corpus
    from .probes import SUITES, write_probes
    from .truth import Truth, load_truth
    from .vocab import CATEGORIES, PROBE_INSTANCES, TRAIN_INSTANCES, Category, read_vocabulary, write_vocabulary

_EXPORTS = {
    "write_corpus": "corpus", "plan_corpus": "corpus", "parse_size": "corpus", "Corpus": "corpus",
    "RecordingInfo": "corpus",
    "write_probes": "probes", "SUITES": "probes",
    "load_truth": "truth", "Truth": "truth",
    "CATEGORIES": "vocab", "Category": "vocab", "TRAIN_INSTANCES": "vocab", "PROBE_INSTANCES": "vocab",
    "read_vocabulary": "vocab", "write_vocabulary": "vocab",
}

__all__ = ["CATEGORIES", "Category", "Corpus", "PROBE_INSTANCES", "RecordingInfo", "SUITES", "TRAIN_INSTANCES",
           "Truth", "load_truth", "parse_size", "plan_corpus", "read_vocabulary", "write_corpus", "write_probes",
           "write_vocabulary"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
