"""What every benchmark shares: the machine description and the report writer."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.cells import Paused
from predictors.hardware import environment


def machine_info() -> dict[str, Any]:
    """The machine a report was measured on."""
    info: dict[str, Any] = {
        "cpu": environment()["cpu"],
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # Load when the report was written: above the core count, other work shared the machine.
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }
    return info


def _md_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(
    name: str,
    *,
    config: dict[str, Any],
    results: dict[str, Any],
    targets: dict[str, dict[str, Any]],
    out_dir: Path,
    notes: str = "",
    tables: list[tuple[str, list[dict[str, Any]]]] | None = None,
) -> dict[str, Any]:
    """Write ``<out_dir>/<name>.json`` and ``.md``; returns the JSON document.

    ``targets`` maps a target name to ``{"value", "goal", "met"}``; ``tables`` are
    (title, rows) pairs rendered as Markdown tables in the ``.md`` file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "config": config,
        "results": results,
        "targets": targets,
        "notes": notes,
    }
    tmp = out_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, out_dir / f"{name}.json")

    lines = [
        f"# Benchmark `{name}`",
        "",
        f"Run {doc['created']} on: " + ", ".join(f"{k}={v}" for k, v in doc["machine"].items()),
        "",
        f"Config: `{json.dumps(config, default=str)}`",
        "",
        "## Targets",
        "",
    ]
    lines += ["| target | value | goal | met |", "|---|---|---|---|"]
    for tname, t in targets.items():
        lines.append(
            f"| {tname} | {_md_value(t.get('value'))} | {t.get('goal', '')} | "
            f"{'yes' if t.get('met') else 'NO'} |"
        )
    for title, rows in tables or []:
        if not rows:
            continue
        cols = list(rows[0])
        lines += ["", f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_md_value(r.get(c, "")) for c in cols) + " |" for r in rows]
    if notes:
        lines += ["", "## Notes", "", notes]
    (out_dir / f"{name}.md").write_text("\n".join(lines) + "\n")
    return doc


def jobs_argument(run: Callable[..., Any], jobs: int) -> dict[str, int]:
    """``{"jobs": jobs}`` when ``run`` takes a ``jobs`` argument; refuses ``jobs`` > 1 otherwise."""
    if "jobs" in inspect.signature(run).parameters:
        return {"jobs": jobs}
    if jobs != 1:
        raise SystemExit(f"{run.__module__} runs one cell at a time: it takes no --jobs")
    return {}


def run_from_command_line(run: Callable[..., dict[str, Any]], *, description: str | None) -> None:
    """``python -m bench.NAME [--quick] [--out-dir DIR] [--jobs N]``: run a benchmark, print its targets.

    ``--jobs`` is passed only to benchmarks whose ``run`` takes it (those built on ``bench.cells``).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "reports")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at once (resumable benchmarks)")
    args = parser.parse_args()
    try:
        doc = run(quick=args.quick, out_dir=args.out_dir, **jobs_argument(run, args.jobs))
    except Paused as exc:
        raise SystemExit(f"{exc}") from exc
    for name, target in doc["targets"].items():
        print(f"{name}: {target['value']} ({target['goal']}) -> {'met' if target['met'] else 'NOT met'}")
