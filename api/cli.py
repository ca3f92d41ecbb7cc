"""The ``nas`` command: serve, tokens, submit and follow jobs, download subnets, run benchmarks."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from api.client import DEFAULT_URL, NASClient, NASClientError

app = typer.Typer(name="nas", help="Neural architecture search as a service.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens (works on the database directly).", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console()


def token_file() -> Path:
    """Where ``nas token create`` saves the token for later commands."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "nas" / "token"


class Target:
    """The server and token the remote commands use."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token

    def client(self) -> NASClient:
        token = self.token
        if token is None and token_file().is_file():
            token = token_file().read_text().strip()
        if not token:
            console.print("[red]no token:[/red] pass --token, set NAS_TOKEN, or run `nas token create USER`")
            raise typer.Exit(2)
        return NASClient(self.url, token)


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="NAS_URL", help="server URL")] = DEFAULT_URL,
    token: Annotated[
        str | None, typer.Option(envvar="NAS_TOKEN", help="API token", show_default=False)
    ] = None,
) -> None:
    ctx.obj = Target(url, token)


def _remote(ctx: typer.Context) -> NASClient:
    target: Target = ctx.obj
    return target.client()


def _fail(exc: NASClientError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default NAS_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default NAS_PORT or 8000)")] = None,
) -> None:
    """Run the API server (and, by default, an embedded Ray) until interrupted."""
    import uvicorn

    from nas.settings import Settings

    settings = Settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )


def _profile_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    return [] if names == ["none"] else names


@app.command()
def head(
    port: Annotated[int, typer.Option(help="the GCS port workers and the API join")] = 6379,
    node_ip_address: Annotated[
        str | None, typer.Option(help="address to advertise (127.0.0.1: a one-machine cluster)")
    ] = None,
    num_cpus: Annotated[int, typer.Option(help="CPUs the head offers (0: it runs no work)")] = 0,
    temp_dir: Annotated[str | None, typer.Option(help="Ray's temp folder (default /tmp/ray)")] = None,
) -> None:
    """Start a Ray head with token authentication (a token is generated if none exists)."""
    from workers.node import head_command, run_node

    raise typer.Exit(
        run_node(
            head_command(port=port, node_ip_address=node_ip_address, num_cpus=num_cpus, temp_dir=temp_dir)
        )
    )


@app.command()
def worker(
    address: Annotated[str, typer.Option(help="Ray head to join, host:port")],
    job_slots: Annotated[
        int, typer.Option(min=0, help="jobs this node trains at once (0: measures only)")
    ] = 1,
    profiles: Annotated[
        str | None,
        typer.Option(help="hardware profiles it serves, comma-separated ('none': none; default: detected)"),
    ] = None,
    node_ip_address: Annotated[
        str | None, typer.Option(help="address to advertise (127.0.0.1: a one-machine cluster)")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs to offer Ray (default: all)")] = None,
) -> None:
    """Join a Ray cluster as a worker that advertises the hardware profiles this node serves."""
    from workers.node import run_node, worker_command

    try:
        cmd = worker_command(
            address,
            job_slots=job_slots,
            num_cpus=num_cpus,
            profiles=_profile_list(profiles),
            node_ip_address=node_ip_address,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--profiles / --job-slots") from exc
    raise typer.Exit(run_node(cmd))


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="user name; created if new")],
    save: Annotated[bool, typer.Option(help="also save it for later `nas` commands")] = True,
) -> None:
    """Create an API token for USER and print it (it is shown only once)."""
    from nas.settings import Settings
    from nas.store import Database, crud

    db = Database(Settings().database_url)
    db.upgrade()
    with db.session() as s:
        uid = crud.get_or_create_user(s, name=user).id
        token = crud.create_token(s, user_id=uid)
    db.dispose()
    if save:
        path = token_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(token + "\n")
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="the token to revoke (as `nas token create` printed it)")],
) -> None:
    """Revoke an API token: every later request with it is refused (401)."""
    from nas.settings import Settings
    from nas.store import Database, crud

    db = Database(Settings().database_url)
    db.upgrade()
    with db.session() as s:
        found = crud.revoke_token(s, token=token.strip())
    db.dispose()
    if not found:
        console.print(
            "[red]no such token:[/red] check that it was copied whole and NAS_DATABASE_URL is right"
        )
        raise typer.Exit(1)
    if token_file().is_file() and token_file().read_text().strip() == token.strip():
        token_file().unlink()
    typer.echo("revoked")


def _load_spec(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]cannot read {path}:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(data, dict):
        console.print(f"[red]{path} is not a job spec:[/red] expected a mapping at the top level")
        raise typer.Exit(2)
    return data


@app.command()
def submit(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="job spec (YAML)", exists=True, dir_okay=False)],
    wait: Annotated[bool, typer.Option(help="follow progress, then print the Pareto front")] = False,
) -> None:
    """Submit a search job."""
    from api.render import pareto_table, watch_events

    with _remote(ctx) as client:
        try:
            job = client.submit(_load_spec(spec))
            if not wait:
                typer.echo(job.id)
                return
            console.print(f"submitted job [bold]{job.id}[/bold] ({job.name})")
            final = watch_events(client.follow(job.id), console) or client.get_job(job.id).status.value
            job = client.get_job(job.id)
            if final != "succeeded":
                console.print(f"[red]job {job.id} {final}[/red]" + (f": {job.error}" if job.error else ""))
                raise typer.Exit(1)
            console.print(pareto_table(client.pareto(job.id)))
        except NASClientError as exc:
            raise _fail(exc) from exc


@app.command()
def status(ctx: typer.Context, job: Annotated[str, typer.Argument(help="job id")]) -> None:
    """Show a job's status and progress."""
    from api.render import job_summary

    with _remote(ctx) as client:
        try:
            console.print(job_summary(client.get_job(job)))
        except NASClientError as exc:
            raise _fail(exc) from exc


@app.command()
def pareto(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="job id")],
    target: Annotated[str | None, typer.Option(help="a target named in the job spec")] = None,
) -> None:
    """Print a job's Pareto front (or one of its targets' fronts)."""
    from api.render import pareto_table

    with _remote(ctx) as client:
        try:
            front = client.pareto(job, target=target)
            console.print(pareto_table(front))
            if front.targets and target is None:
                console.print(f"targets with their own front: {', '.join(front.targets)} (--target NAME)")
        except NASClientError as exc:
            raise _fail(exc) from exc


def verify_bundle(folder: Path) -> list[str]:
    """Check every file listed in ``SHA256SUMS``; returns the names checked."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise ValueError(f"{folder} has no SHA256SUMS file; the bundle is incomplete")
    checked = []
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if actual != digest:
            raise ValueError(f"{name}: sha256 {actual} does not match SHA256SUMS ({digest})")
        checked.append(name)
    return checked


@app.command()
def download(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="job id")],
    subnet: Annotated[int, typer.Argument(help="subnet id (see `nas pareto JOB`)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to unpack the bundle into")] = Path("."),
) -> None:
    """Export a subnet, download its bundle, unpack it and verify its checksums."""
    with _remote(ctx) as client:
        try:
            artifact = client.export(job, subnet)
            archive = client.download(artifact, out / f"subnet-{subnet}.zip")
        except NASClientError as exc:
            raise _fail(exc) from exc
    target = out
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            if Path(member).is_absolute() or ".." in Path(member).parts:
                console.print(f"[red]refusing to unpack {member!r}: it points outside {target}[/red]")
                raise typer.Exit(1)
        zf.extractall(target)
    try:
        checked = verify_bundle(target)
    except ValueError as exc:
        console.print(f"[red]bundle check failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"unpacked {len(checked)} verified files into [bold]{target}[/bold]")
    typer.echo(str(target))


def import_benchmark(name: str) -> ModuleType:
    """The module ``bench/<name>.py``. Benchmarks run from a checkout and some use its test harness
    (``tests/e2e/server.py``'s live server), which is not an installed package: the checkout's root
    goes first on ``sys.path`` however the ``nas`` script was started."""
    root = str(Path(importlib.import_module("bench").__file__ or "").resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"bench.{name.replace('-', '_')}")


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="benchmark name, e.g. kernels (bench/<name>.py)")],
    quick: Annotated[bool, typer.Option(help="the short configuration")] = False,
    jobs: Annotated[
        int, typer.Option(min=1, help="cells run at once, for benchmarks that resume (bench/cells.py)")
    ] = 1,
) -> None:
    """Run a benchmark; it writes bench/reports/<name>.json and .md."""
    module_name = f"bench.{name.replace('-', '_')}"
    try:
        module = import_benchmark(name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        console.print(f"[red]no benchmark {name!r}:[/red] expected a module {module_name} with run()")
        raise typer.Exit(2) from exc
    from bench.common import jobs_argument

    try:
        extra = jobs_argument(module.run, jobs)
    except SystemExit as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    from bench.cells import Paused

    try:
        report = module.run(quick=quick, out_dir=Path("bench/reports"), **extra)
    except Paused as exc:  # resumable benchmarks: the finished cells are kept
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(3) from exc
    for target_name, target in (report.get("targets") or {}).items():
        mark = "[green]met[/green]" if target.get("met") else "[red]NOT met[/red]"
        console.print(f"{target_name}: {target.get('value')} (goal {target.get('goal')}) {mark}")


if __name__ == "__main__":
    app()
