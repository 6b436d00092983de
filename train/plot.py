"""`babyfast plot RUN`: loss and throughput of a run over its steps, as a PNG."""
from __future__ import annotations

import os
from pathlib import Path

from .metrics import read_metrics

__all__ = ["plot_run"]


def plot_run(run: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Draw loss (log scale) and learning rate, tokens/s, and MFU and loader stall against the step;
    writes `out` (default RUN/plot.png) and returns its path."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    from babyfast._atomic import atomic_open

    records = read_metrics(run)
    if not records:
        raise ValueError(f"{run}/metrics.jsonl holds no step records yet: nothing to plot")
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
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
    path = Path(out) if out is not None else Path(run) / "plot.png"
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path
