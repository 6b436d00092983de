"""Render the README's "Performance" section from bench/results/*.json (no figure is typed by hand).

Every result file written through `bench._common.write_result` carries the machine, the command and the
date, and most carry a "table": {"title", "columns", "rows", "notes"} block next to their raw
measurements. This script writes, between the README's `<!-- bench:start -->` and `<!-- bench:end -->`
markers:

1. the ratios against each peer, CPU first (ClipLoader against PyAV and torchcodec, the C++ reader against
   zarr-python, the training step against transformers), then those measured on a GPU, one row per ratio
   with the machine and date it was measured on;
2. every file's own table, stamped with its machine, date and command: the loader first, then the rest.

    python -m bench.report            # rewrite README.md in place (atomically)
    python -m bench.report --check    # exit 1 if README.md is out of date
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from babyfast._atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

# the order of the detailed tables: the loader first, then the CPU benchmarks, then the GPU ones;
# files not named here follow, by name
ORDER = ("loader", "reader", "plan", "ingest", "synth", "train", "soak", "learn",
         "loader_gpu", "kernels_patchify", "kernels_attention", "train_gpu")
GPU_FILES = ("loader_gpu", "kernels_patchify", "kernels_attention", "train_gpu")

Ratio = dict[str, Any]  # ours, peer, measure, ratio


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows])


def _where(data: dict[str, Any]) -> str:
    """The machine a file was measured on, in a few words: the GPU (if any), else the CPU and its cores."""
    m = data.get("machine", {})
    if m.get("device"):
        return str(m["device"])
    cpu = m.get("cpu") or m.get("platform") or "?"
    return f"{cpu}, {m['cores']} cores" if m.get("cores") else str(cpu)


def _when(data: dict[str, Any]) -> str:
    """The date of a file's measurements, to the minute (UTC)."""
    date = str(data.get("date", "?"))
    return date[:16].replace("T", " ") + " UTC" if len(date) >= 16 else date


def _is_gpu(stem: str, data: dict[str, Any]) -> bool:
    return stem in GPU_FILES or stem.startswith("kernels") or bool(data.get("machine", {}).get("device"))


# ---- the ratios against peers, read from the fields each script writes ----------------------------------


def _loader_ratios(data: dict[str, Any]) -> Iterator[Ratio]:
    peers = {"pyav": "PyAV", "torchcodec": "torchcodec"}
    reads = {"source": "source files", "resized": "pre-resized files"}
    workers = data.get("setup", {}).get("workers", 2)
    for key, ratio in data.get("ratios", {}).items():
        decoder, _, kind = key.partition("_")
        peer = f"DataLoader({workers} workers) + {peers.get(decoder, decoder)}"
        if kind:
            peer += f", {reads.get(kind, kind)}"
        yield {"ours": "ClipLoader (store, default augmentation)", "peer": peer, "measure": "clips/s", "ratio": ratio}


def _reader_ratios(data: dict[str, Any]) -> Iterator[Ratio]:
    ratios = data.get("ratios", {})
    batch = data.get("settings", {}).get("batch", "?")
    for key, what in (("single", "single chunks"), ("batch", f"batches of {batch}")):
        if key in ratios:
            yield {"ours": "C++ ChunkReader (crc32c verified)", "peer": "zarr-python (faster of: index cached or not)",
                   "measure": f"random chunk reads/s, {what}", "ratio": ratios[key]}


def _train_ratios(data: dict[str, Any]) -> Iterator[Ratio]:
    step = data.get("step", {})
    if "ratio" in step:
        yield {"ours": f"babyfast {step.get('model', '')} VideoMAE step".replace("  ", " "),
               "peer": "transformers VideoMAEForPreTraining", "measure": "input tokens/s", "ratio": step["ratio"]}
    for e in data.get("e2e", []):
        if e.get("ratio") is None:
            continue
        yield {"ours": f"babyfast {e.get('model', '')} end to end (ClipLoader)",
               "peer": "transformers + DataLoader + PyAV", "measure": "input tokens/s", "ratio": e.get("ratio")}


def _range(values: list[float | None]) -> str | None:
    present = [v for v in values if v]
    if not present:
        return None
    lo, hi = min(present), max(present)
    return f"{lo:.2f}x" if abs(hi - lo) < 0.005 else f"{lo:.2f}x - {hi:.2f}x"


def _kernel_ratios(data: dict[str, Any]) -> Iterator[Ratio]:
    rows = data.get("rows", [])
    embed = [r for r in rows if r.get("kind") == "embed"]
    for other, name in (("torch", "eager PyTorch"), ("compile", "torch.compile")):
        span = _range([r.get(f"speedup_vs_{other}") for r in embed])
        if span:
            yield {"ours": "Triton fused patchify + embedding", "peer": name,
                   "measure": f"time, over {len(embed)} cases", "ratio": span}
    for metric, what in (("fwd_tflop_s", "forward"), ("fwd_bwd_tflop_s", "forward + backward")):
        span = _range([r.get(f"{metric}_vs_best") for r in rows])
        if span:
            yield {"ours": "Triton flash attention", "peer": "the best other backend present",
                   "measure": f"{what} TFLOP/s, over {len(rows)} shapes", "ratio": span}


RATIOS: dict[str, Callable[[dict[str, Any]], Iterator[Ratio]]] = {
    "loader": _loader_ratios, "reader": _reader_ratios, "train": _train_ratios, "train_gpu": _train_ratios,
    "kernels_patchify": _kernel_ratios, "kernels_attention": _kernel_ratios,
}


def _ratio_tables(results: list[tuple[str, Path, dict[str, Any]]]) -> list[str]:
    out = []
    for gpu in (False, True):
        rows = []
        for stem, path, data in results:
            if stem not in RATIOS or _is_gpu(stem, data) != gpu:
                continue
            for r in RATIOS[stem](data):
                ratio = r["ratio"]
                ratio = f"{ratio:.2f}x" if isinstance(ratio, (int, float)) else str(ratio)
                rows.append([r["ours"], r["peer"], r["measure"], f"**{ratio}**", _where(data), _when(data),
                             f"`{path.name}`"])
        if rows:
            out.append(f"#### Against peers, {'GPU' if gpu else 'CPU'}: how many times faster\n")
            out += _table(["babyfast", "peer", "measure", "ratio", "machine", "date", "file"], rows)
            out.append("")
    return out


# ---- the README section ---------------------------------------------------------------------------------


def _load(results_dir: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    found = {p.stem: p for p in results_dir.glob("*.json")}
    stems = [s for s in ORDER if s in found] + sorted(s for s in found if s not in ORDER)
    return [(s, found[s], json.loads(found[s].read_text())) for s in stems]


def render(results_dir: Path) -> str:
    results = _load(results_dir)
    parts = _ratio_tables(results)
    for _, path, data in results:
        table = data.get("table")
        if not table:
            continue
        try:
            name = path.relative_to(ROOT)
        except ValueError:
            name = path
        parts.append(f"#### {table['title']}\n")
        parts.append(f"Measured {_when(data)} on {_where(data)}; `{name}`, command: `{data.get('command', '?')}`\n")
        parts += _table(table["columns"], table["rows"])
        for note in table.get("notes", []):
            parts.append(f"\n{note}")
        parts.append("")
    return "\n".join(parts) if parts else "_No benchmark results yet._\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the README's section is out of date")
    args = ap.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"{readme}: no {START} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{render(Path(args.results))}{END}{tail}"
    if args.check:
        if new != text:
            print(f"{readme} is out of date with {args.results}: run python -m bench.report", file=sys.stderr)
        return 0 if new == text else 1
    write_text(readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
