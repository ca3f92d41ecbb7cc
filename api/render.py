"""Terminal rendering for the CLI: a progress bar per stage from the event stream, and the Pareto table."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from nas.schemas import JOB_STAGES, EventPublic, JobPublic, ParetoPublic, SubnetPublic

STAGES = JOB_STAGES


def watch_events(events: Iterable[EventPublic], console: Console) -> str | None:
    """Show a progress bar per stage while ``events`` arrive; returns the job's final status if seen."""
    final: str | None = None
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def task(stage: str) -> TaskID:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=None, note="")
            return tasks[stage]

        for ev in events:
            p = ev.payload
            if ev.kind == "stage" and ev.stage:
                tid = task(ev.stage)
                if p.get("status") == "done":
                    total = progress.tasks[tid].total or 1
                    progress.update(tid, total=total, completed=total)
            elif ev.kind == "progress" and ev.stage:
                note = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in p.items() if k not in ("stage", "done", "total"))  # fmt: skip
                progress.update(task(ev.stage), total=p.get("total"), completed=p.get("done", 0), note=note)
            elif ev.kind == "epoch":
                acc = p.get("val_acc_largest")
                msg = f"epoch {p.get('epoch')}: loss {p.get('loss', float('nan')):.4f}"
                if isinstance(acc, float):
                    msg += f", val acc (largest) {acc:.4f}"
                progress.console.print(msg)
            elif ev.kind == "log":
                progress.console.print(f"[dim]{ev.stage or ''}[/dim] {p.get('message', '')}")
            elif ev.kind == "error":
                progress.console.print(f"[red]error:[/red] {p.get('message', '')}")
            elif ev.kind == "status":
                status = str(p.get("status"))
                if status in ("succeeded", "failed", "cancelled"):
                    final = status
    return final


def job_summary(job: JobPublic) -> Table:
    table = Table(show_header=False, box=None)
    for key in (
        "id",
        "name",
        "status",
        "stage",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "error",
    ):
        value = getattr(job, key)
        if key == "progress":
            value = f"{value:.0%}"
        if value is not None:
            table.add_row(f"[bold]{key}[/bold]", str(value.value if hasattr(value, "value") else value))
    return table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def subnet_table(points: list[SubnetPublic], *, profiles: list[str], title: str) -> Table:
    """Accuracy, latency per profile, params, arch hash and subnet id; most accurate first."""
    table = Table(title=title)
    table.add_column("subnet", justify="right")
    table.add_column("accuracy (val)", justify="right")
    table.add_column("accuracy (test)", justify="right")
    for p in profiles:
        table.add_column(f"{p} ms", justify="right")
    table.add_column("params", justify="right")
    table.add_column("MFLOPs", justify="right")
    table.add_column("arch hash")
    for sub in sorted(points, key=lambda x: -(x.accuracy_val or 0.0)):
        lat = [_fmt(sub.latency[p].median_ms, ".3f") if p in sub.latency else "-" for p in profiles]
        table.add_row(
            str(sub.id),
            _fmt(sub.accuracy_val, ".4f"),
            _fmt(sub.accuracy_test, ".4f"),
            *lat,
            f"{sub.params:,}",
            f"{sub.flops / 1e6:.2f}",
            sub.arch_hash,
        )
    return table


def pareto_table(front: ParetoPublic) -> Table:
    profiles = sorted({p for sub in front.points for p in sub.latency})
    hv = "-" if front.hypervolume is None else f"{front.hypervolume:.4g}"
    return subnet_table(
        front.points,
        profiles=profiles,
        title=f"Pareto front of {front.job_id}"
        + (f", target {front.target}" if front.target else "")
        + f" (hypervolume {hv})",
    )
