"""Joining a Ray cluster as a worker node that advertises the hardware profiles it serves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from workers.resources import node_resources


def worker_command(address: str, *, job_slots: int = 1, num_cpus: int | None = None) -> list[str]:
    """The `ray start` command line that joins ``address`` with this node's hw:<profile> resources."""
    ray = shutil.which("ray") or f"{sys.executable} -m ray.scripts.scripts"
    cmd = [
        *ray.split(),
        "start",
        "--address",
        address,
        "--block",
        "--resources",
        json.dumps(node_resources(job_slots=job_slots)),
    ]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    return cmd


def run_worker(address: str, *, job_slots: int = 1, num_cpus: int | None = None) -> int:
    """Join the cluster and block until the node stops; returns ray's exit code."""
    return subprocess.call(worker_command(address, job_slots=job_slots, num_cpus=num_cpus))
