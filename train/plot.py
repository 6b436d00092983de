"""`babyfast plot RUN`: loss and throughput of a run over its steps, as a PNG."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1) -> tuple[Any, Any]:
    """(figure, axes) drawn off-screen on matplotlib's Agg canvas. No pyplot: a notebook's or a desktop's
    backend stays as the user set it, and no figure piles up in pyplot's registry."""
    import logging

    from matplotlib.figure import Figure

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    fig = Figure(figsize=figsize, constrained_layout=True)
    return fig, fig.subplots(nrows, ncols)


def save_png(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write `fig` to `path` as a PNG, atomically."""
    from babyfast._atomic import atomic_open

    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return Path(path)

__all__ = ["plot_run"]


def plot_run(run: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Draw loss (log scale) and learning rate, tokens/s, and MFU and loader stall against the step;
    writes `out` (default RUN/plot.png) and returns its path."""
    from .metrics import read_metrics  # here, so that eval's plots import without torch

    records = read_metrics(run)
    if not records:
        raise ValueError(f"{run}/metrics.jsonl holds no step records yet: nothing to plot")
    steps = [r["step"] for r in records]
    fig, axes = new_figure((15, 4), 1, 3)
    ax = axes[0]
    ax.plot(steps, [r["loss"] for r in records], color="C0", marker=".")
    ax.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    lr = ax.twinx()
    lr.plot(steps, [r["lr"] for r in records], color="C7", linestyle="--")
    lr.set_ylabel("learning rate (dashed)")
    ax = axes[1]
    ax.plot(steps, [r["input_tokens_per_s"] for r in records], label="input tokens/s", marker=".")
    ax.plot(steps, [r["encoder_tokens_per_s"] for r in records], label="encoder (visible) tokens/s", marker=".")
    ax.set(xlabel="step", ylabel="tokens/s", title="throughput")
    ax.legend()
    ax = axes[2]
    if all(r.get("mfu") is not None for r in records):
        ax.plot(steps, [100 * r["mfu"] for r in records], label="MFU %", marker=".")
    ax.plot(steps, [100 * r["stall"] for r in records], label="loader stall %", marker=".")
    ax.set(xlabel="step", ylabel="%", title="MFU and loader stall", ylim=(0, None))
    ax.legend()
    fig.suptitle(str(Path(run).resolve().name))
    return save_png(fig, Path(out) if out is not None else Path(run) / "plot.png")
