"""The report card: `report.json`, `report.md` and `report.png` of an evaluation; several runs side by
side (`babyfast report RUN ...`); the developmental trajectory of a run over its checkpoints."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from babyfast.train.plot import new_figure, save_png

__all__ = ["write_report", "format_card", "plot_card", "compare_runs", "write_trajectory", "read_report"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_card(report: dict[str, Any]) -> str:
    """The report as a Markdown table: accuracy [95% CI], chance, controls, difference to random-init,
    oracle, reached."""
    m = report["model"]
    names = sorted({c for r in report["rows"] for c in r["controls"]}, key=lambda c: (c != "random-init", c))
    head = ["milestone", "protocol", "n", "accuracy % [95% CI]", "chance %", *[f"{c} %" for c in names],
            "Δ random-init [95% CI]", "oracle %", "reached"]
    lines = [f"### {m['objective']} {m['model']} — step {m['step']} ({m.get('path') or 'random weights'})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["rows"]:
        rnd = r["controls"].get("random-init")
        diff = (f"{100 * rnd['diff']:+.1f} [{100 * rnd['diff_ci'][0]:+.1f}, {100 * rnd['diff_ci'][1]:+.1f}]"
                if rnd else "–")
        cells = [r["milestone"], r["protocol"], str(r["n"]),
                 f"{_pct(r['accuracy'])} [{_pct(r['ci'][0])}, {_pct(r['ci'][1])}]", _pct(r["chance"]),
                 *[_pct(r["controls"][c]["accuracy"]) if c in r["controls"] else "–" for c in names], diff,
                 _pct(r["oracle"]) if r["oracle"] is not None else "–", "**yes**" if r["reached"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
        for g, sub in r.get("groups", {}).items():  # conditions reported separately, under their row
            cells = [f"↳ {g}", "", str(sub["n"]),
                     f"{_pct(sub['accuracy'])} [{_pct(sub['ci'][0])}, {_pct(sub['ci'][1])}]",
                     _pct(r["chance"]),
                     *[_pct(sub["controls"][c]) if c in sub["controls"] else "–" for c in names], "–", "–", ""]
            lines.append("| " + " | ".join(cells) + " |")
    unscored = report.get("provenance", {}).get("unscored", {})
    if unscored:
        lines += ["", "Not scored: " + "; ".join(f"{k} ({v})" for k, v in sorted(unscored.items())) + "."]
    lines += ["", "Reached: the 95% interval's lower bound is above chance and the paired-bootstrap interval of the "
              "difference to the same architecture with random weights lies above zero. Probe trials never "
              "come from the training recordings (checked by toy instance against the training store)."]
    return "\n".join(lines) + "\n"


def plot_card(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Every (milestone, protocol) as a bar with its interval, chance as a line, controls as markers."""
    rows = report["rows"]
    fig, ax = new_figure((max(6.0, 0.9 * len(rows) + 2), 4.5))
    xs = range(len(rows))
    acc = [100 * r["accuracy"] for r in rows]
    # (a percentile bootstrap interval need not hold the mean itself: no bar below zero then)
    err = [[max(0.0, 100 * (r["accuracy"] - r["ci"][0])) for r in rows],
           [max(0.0, 100 * (r["ci"][1] - r["accuracy"])) for r in rows]]
    ax.bar(xs, acc, yerr=err, capsize=3, color=["C2" if r["reached"] else "C0" for r in rows], label="trained")
    for x, r in zip(xs, rows, strict=True):
        ax.hlines(100 * r["chance"], x - 0.45, x + 0.45, colors="k", linestyles="--", linewidth=1)
    markers = {"random-init": "v", "shuffled-pairs": "s"}
    for name in sorted({c for r in rows for c in r["controls"]}):
        pts = [(x, 100 * r["controls"][name]["accuracy"]) for x, r in zip(xs, rows, strict=True)
               if name in r["controls"]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], markers.get(name, "o"), color="C3", label=name, linestyle="")
    oracle = [(x, 100 * r["oracle"]) for x, r in zip(xs, rows, strict=True) if r["oracle"] is not None]
    if oracle:
        ax.plot([p[0] for p in oracle], [p[1] for p in oracle], "*", color="C1", label="oracle", linestyle="")
    ax.set_xticks(list(xs), [f"{r['milestone']}\n{r['protocol']}" for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="accuracy % (95% CI); dashed: chance", ylim=(0, 105),
           title=f"{report['model']['objective']} {report['model']['model']}, step {report['model']['step']}")
    ax.legend(fontsize=7, loc="upper right")
    return save_png(fig, path)


def write_report(evaluation: Any, out: str | os.PathLike[str]) -> dict[str, Path]:
    """report.json, report.md and report.png in `out`."""
    from babyfast._atomic import write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = evaluation.as_dict() if hasattr(evaluation, "as_dict") else evaluation
    paths = {"json": write_text(out / "report.json", json.dumps(doc, indent=1, default=float)),
             "md": write_text(out / "report.md", format_card(doc))}
    paths["png"] = plot_card(doc, out / "report.png")
    return paths


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A report.json, given it, its folder, or a run folder (RUN/eval/report.json)."""
    p = Path(path)
    for candidate in (p, p / "report.json", p / "eval" / "report.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"{path}: no report.json (run babyfast eval {path} first)")


def compare_runs(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> dict[str, Path]:
    """Headline rows of several runs side by side: comparison.md and comparison.png in `out`."""
    from babyfast._atomic import write_text

    reports = [(str(p), read_report(p)) for p in paths]
    keys = []
    for _, rep in reports:
        keys += [(r["milestone"], r["protocol"]) for r in rep["rows"] if (r["milestone"], r["protocol"]) not in keys]
    head = ["milestone", "protocol", *[Path(p).name for p, _ in reports]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table: dict[tuple[str, str], list[Any]] = {}
    for key in keys:
        cells = []
        for _, rep in reports:
            r = next((r for r in rep["rows"] if (r["milestone"], r["protocol"]) == key), None)
            cells.append(r)
        table[key] = cells
        lines.append("| " + " | ".join([*key, *[f"{_pct(r['accuracy'])} [{_pct(r['ci'][0])}, {_pct(r['ci'][1])}]"
                                                + (" ✓" if r["reached"] else "") if r else "–" for r in cells]]) + " |")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths_out = {"md": write_text(out / "comparison.md", "\n".join(lines) + "\n")}
    fig, ax = new_figure((max(6.0, 1.1 * len(keys) + 2), 4.5))
    width = 0.8 / max(1, len(reports))
    for j, (p, _) in enumerate(reports):
        xs = [i + j * width for i in range(len(keys))]
        vals = [100 * c[j]["accuracy"] if c[j] else 0 for c in table.values()]
        lo = [100 * (c[j]["accuracy"] - c[j]["ci"][0]) if c[j] else 0 for c in table.values()]
        hi = [100 * (c[j]["ci"][1] - c[j]["accuracy"]) if c[j] else 0 for c in table.values()]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=Path(p).name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], [f"{m}\n{p}" for m, p in keys], rotation=45,
                  ha="right", fontsize=7)
    ax.set(ylabel="accuracy % (95% CI)", ylim=(0, 105))
    ax.legend(fontsize=7)
    paths_out["png"] = save_png(fig, out / "comparison.png")
    return paths_out


def write_trajectory(points: list[dict[str, Any]], out: str | os.PathLike[str]) -> dict[str, Path]:
    """trajectory.json and trajectory.png: each milestone's headline accuracy (with its interval) against
    clips seen, hours of video seen and the mean age of the children whose recordings were seen."""
    from babyfast._atomic import write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_text(out / "trajectory.json", json.dumps(points, indent=1, default=float))}
    milestones = sorted({r["milestone"] for p in points for r in p["rows"]})
    axes_x = (("clips", "clips seen"), ("hours", "hours of video seen"), ("age_days", "mean age seen (days)"))
    fig, axes = new_figure((15, 4.2), 1, 3)
    for ax, (key, label) in zip(axes, axes_x, strict=True):
        for k, name in enumerate(milestones):
            xs, ys, lo, hi = [], [], [], []
            for p in points:
                r = next((r for r in p["rows"] if r["milestone"] == name), None)
                if r is None or p["seen"].get(key) is None:
                    continue
                xs.append(p["seen"][key])
                ys.append(100 * r["accuracy"])
                lo.append(max(0.0, 100 * (r["accuracy"] - r["ci"][0])))
                hi.append(max(0.0, 100 * (r["ci"][1] - r["accuracy"])))
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=2, label=name, color=f"C{k}")
        ax.set(xlabel=label, ylabel="headline accuracy % (95% CI)", ylim=(0, 105))
    axes[0].legend(fontsize=7)
    fig.suptitle("developmental trajectory: each checkpoint of the run")
    paths["png"] = save_png(fig, out / "trajectory.png")
    return paths
