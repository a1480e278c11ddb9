"""Shared helpers of the benchmark suite: machine info, result files, the summary table.

Every benchmark module used by ``bench/run_all.py`` has a ``run(quick: bool, **options)``
function returning a dict with

* ``figures``: rows of the summary table, made with :func:`figure`;
* ``results``: everything measured (written to ``bench/results/<name>.json``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SCRIPTS = REPO / "workflow" / "scripts"
if str(SCRIPTS) not in sys.path:  # livescreen without the editable install
    sys.path.insert(0, str(SCRIPTS))


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repository (read-only), or None outside a checkout."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - torch missing or broken: no GPU to report
        return None
    return None


def machine_info() -> dict:
    """CPU count, load average, commit, date, versions: stored with every result."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "gpu": gpu_name(),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def figure(name: str, value: str, target: str = "-", met: bool | None = None,
           note: str = "") -> dict:
    """One row of the summary table (``met`` None: no target, reported only)."""
    return {"figure": name, "value": value, "target": target,
            "met": None if met is None else bool(met), "note": note}


def write_result(name: str, machine: dict, out: dict, options: dict,
                 seconds: float, path: Path | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or ``path``): machine, options, figures, results."""
    path = Path(path) if path is not None else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "machine": {**machine,
                                          "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
           "options": options, "seconds": round(seconds, 1),
           "figures": out.get("figures", []), "results": out.get("results", {})}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def _jsonable(v):
    import numpy as np

    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return str(v)


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def format_table(rows: list[dict]) -> str:
    """Plain-text table (also valid Markdown) of figure rows."""
    head = ["figure", "measured", "target", "met"]
    body = [[str(c).replace("|", "/") for c in (r["figure"], r["value"], r["target"])]
            + [met_text(r["met"])] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line, sep]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in body]
    return "\n".join(out)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds:.0f} s"
