"""Render the README's benchmark tables from bench/results/*.json (no figure is typed by hand).

Every result file written by a bench script carries a "table": {"title", "columns", "rows"} block next to
its raw measurements; this script copies those tables, with the machine and date they came from, between
the README's `<!-- bench:start -->` and `<!-- bench:end -->` markers.

    python bench/report.py            # rewrite README.md in place (atomically)
    python bench/report.py --check    # exit 1 if README.md is out of date
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def render(results_dir: Path) -> str:
    parts = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        table = data.get("table")
        if not table:
            continue
        machine = data.get("machine", {})
        where = machine.get("device") or machine.get("cpu") or machine.get("platform", "")
        parts.append(f"#### {table['title']}\n")
        parts.append(f"`{path.relative_to(ROOT)}` — {data.get('date', '?')}, {where}; "
                     f"command: `{data.get('command', '?')}`\n")
        parts.append("| " + " | ".join(table["columns"]) + " |")
        parts.append("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            parts.append("| " + " | ".join(_cell(v) for v in row) + " |")
        for note in table.get("notes", []):
            parts.append(f"\n{note}")
        parts.append("")
    return "\n".join(parts) if parts else "_No benchmark results yet._\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"{readme}: no {START} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{render(Path(args.results))}{END}{tail}"
    if args.check:
        return 0 if new == text else 1
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
