"""Starting a Ray cluster's nodes: the head, and worker nodes advertising what they serve.

Each node is a ``ray start --block`` run by ``python -m workers.node start ...`` (what ``nas head``
and ``nas worker`` run), which adds two things to Ray's own command:

- Token authentication, as Ray's documentation sets it up: ``RAY_AUTH_MODE=token`` on every node
  and on the API (the driver), the token from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
  ``~/.ray/auth_token``. ``ray start --head`` turns token mode on by itself when a token file
  exists, but ``ray start --address`` does not, so a worker would be refused with
  ``InvalidAuthToken``; here every node (and the API, ``workers.ray_scheduler.init_ray``) turns
  token mode on when a token is available and ``RAY_AUTH_MODE`` is unset. The head generates a
  token when none exists (as ``ray get-auth-token --generate`` does); ``RAY_AUTH_MODE=disabled``
  opts out.
- A loopback ``--node-ip-address`` (or head ``--address``) kept as given: Ray maps 127.0.0.1 to
  the machine's network address (``resolve_ip_for_localhost``), so a one-machine cluster would
  talk over eth0. With a loopback address asked for, the node registers as 127.0.0.1 and the GCS
  address stays loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from workers.resources import node_resources

LOOPBACK = "127.0.0.1"
AUTH_MODE = "RAY_AUTH_MODE"


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _ray_start(args: Sequence[str]) -> list[str]:
    # No log monitor: the API does not stream workers' logs (they stay in each node's log folder).
    start = ["start", "--block", "--disable-usage-stats", "--include-log-monitor", "false"]
    return [sys.executable, "-m", "workers.node", *start, *args]


def head_command(
    *,
    port: int = 6379,
    node_ip_address: str | None = None,
    num_cpus: int | None = 0,
    temp_dir: str | None = None,
) -> list[str]:
    """The head: the GCS only by default (no CPUs, job slots or profiles, so it runs no work)."""
    # No dashboard and no autoscaler monitor: the cluster's nodes are started by hand.
    cmd = _ray_start(["--head", "--port", str(port), "--include-dashboard", "false", "--no-monitor"])
    if node_ip_address:
        cmd += ["--node-ip-address", node_ip_address]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if temp_dir:
        cmd += ["--temp-dir", temp_dir]
    return cmd


def worker_command(
    address: str,
    *,
    job_slots: int = 1,
    num_cpus: int | None = None,
    profiles: Sequence[str] | None = None,
    node_ip_address: str | None = None,
) -> list[str]:
    """A worker node joining ``address`` with its ``hw:<profile>`` resources (``profiles``, or those
    detected here when None) and ``job_slots`` (0: a measurement-only node)."""
    resources = node_resources(job_slots=job_slots, profiles=profiles)
    cmd = _ray_start(["--address", address, "--resources", json.dumps(resources)])
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if node_ip_address:
        cmd += ["--node-ip-address", node_ip_address]
    return cmd


def run_node(cmd: Sequence[str]) -> int:
    """Run a node's command in the foreground until it stops; returns its exit code."""
    return subprocess.call(list(cmd))


def enable_token_auth(*, head: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Turn Ray's token mode on for this process (and its children) when a token is available and
    ``RAY_AUTH_MODE`` is unset; on the head, generate a token when none exists. True if token mode."""
    from ray._private.authentication import authentication_token_setup as auth
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]  # not in its .pyi

    env = os.environ if environ is None else environ
    mode = env.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        return False
    loader = AuthenticationTokenLoader.instance()
    if head and not loader.has_token(ignore_auth_mode=True):
        auth.generate_and_save_token()
        loader.reset_cache()
    if mode is not None:
        return True
    return auth.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _keep_loopback() -> None:
    """Make Ray keep a loopback node address instead of mapping it to the machine's address."""
    from ray._private import services

    resolve = services.resolve_ip_for_localhost

    def keep(host: str) -> str:
        return host if is_loopback(host) else resolve(host)

    services.resolve_ip_for_localhost = keep


def _option(argv: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str]) -> None:
    """``python -m workers.node start ...``: Ray's ``ray start`` with token auth and loopback kept."""
    enable_token_auth(head="--head" in argv)
    ip = _option(argv, "--node-ip-address")
    head = (_option(argv, "--address") or "").rsplit(":", 1)[0]
    if (ip is not None and is_loopback(ip)) or (head and is_loopback(head)):
        _keep_loopback()
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", *argv]
    ray_main()


if __name__ == "__main__":
    main(sys.argv[1:])
