"""The one results helper of the bench scripts: every script writes its JSON through `write_result`, which
stamps what was measured with the machine, the command and the date, and writes it atomically.

    path = write_result("loader", {"clips_per_s": ..., "table": {"title", "columns", "rows", "notes"}})

The file is bench/results/<name>.json (or <out_dir>/<name>.json):

    {"benchmark": name, "command": "python -m bench.<script> ...", "date": ISO-8601 UTC,
     "machine": {"cpu", "cores", "python", "platform", versions...}, **payload}

A "machine" block in the payload adds to (and overrides) the machine stamp, e.g. a GPU's name and driver;
other payload keys (even "benchmark") are written as given. The optional "table" block is what
bench/report.py copies into the README.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from babyfast._atomic import write_text

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int | None:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": cpu_name(), "cores": cores(), "python": platform.python_version(),
                            "platform": platform.platform()}
    for mod in ("numpy", "torch", "zarr", "av"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (a missing or broken package is simply not recorded)
            pass
    try:
        info["load_avg_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def machine_slug() -> str:
    """A folder name for this machine's micro-benchmark baseline: the CPU and its cores, e.g. amd-epyc-2cores
    (`make bench-quick` compares only with a baseline saved on the same kind of machine)."""
    name = "".join(c if c.isalnum() else "-" for c in cpu_name().lower())
    return "-".join(part for part in name.split("-") if part) + f"-{cores()}cores"


def command(argv: list[str] | None = None) -> str:
    """How this process was started, as one would type it again from the repository root:
    `python -m bench.<script> args` (the arguments `argv`, default those of the command line)."""
    args = sys.argv[1:] if argv is None else list(argv)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        head = ["python", "-m", spec.name.removesuffix(".__main__")]
    else:  # not started with -m (e.g. imported by a test): name the file
        head = ["python", os.path.relpath(sys.argv[0])] if sys.argv and sys.argv[0] else ["python"]
    return shlex.join(head + args)


def write_result(name: str, payload: dict[str, Any], out_dir: str | os.PathLike[str] | None = None,
                 argv: list[str] | None = None) -> Path:
    """Write <out_dir>/<name>.json (default bench/results/) atomically, with machine, command and date added.

    argv: the script's arguments when it was called as `main(argv)` rather than from the command line."""
    out = Path(out_dir) if out_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    extra = {k: v for k, v in payload.items() if k != "machine"}
    doc = {"benchmark": name, "command": command(argv),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": {**machine(), **payload.get("machine", {})}, **extra}
    return write_text(out / f"{name}.json", json.dumps(doc, indent=1, default=float) + "\n")
