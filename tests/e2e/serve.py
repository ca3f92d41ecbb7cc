"""The live test server's process: uvicorn on a port the OS picks as it binds, reported in a file.

``python -m tests.e2e.serve PORT_FILE``. A port chosen by the test beforehand (bind 0, close, pass
it on) was free only then: the app's lifespan starts the embedded Ray before uvicorn binds, and
Ray's own processes took that port in between (a failed start, "address already in use"). Here
uvicorn binds port 0 itself, after the lifespan, so the port is the kernel's atomic choice; once
bound, it is written (atomically) to PORT_FILE for the test to read. uvicorn opens the listening
socket as usual (not a socket passed in by descriptor, which lost TCP_NODELAY on its connections).

With ``NAS_GC_STATS_FILE`` set, the process records its full (generation 2) garbage collections, how
many and how long they paused it, and rewrites that file (JSON, atomically) after each one:
``nas bench api-load`` reads it around its load window.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn


class PortReportingServer(uvicorn.Server):
    """``uvicorn.Server`` that writes the port it bound to ``port_file`` once it listens."""

    def __init__(self, config: uvicorn.Config, *, port_file: Path) -> None:
        super().__init__(config)
        self.port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.servers:  # the lifespan or the bind failed: nothing to report
            return
        port = int(self.servers[0].sockets[0].getsockname()[1])
        tmp = self.port_file.with_name(self.port_file.name + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, self.port_file)


def record_full_collections(path: Path) -> Callable[[str, dict[str, Any]], None]:
    """Count the process's generation-2 collections and their pauses into ``path`` after each one;
    returns the callback installed in ``gc.callbacks``."""
    stats: dict[str, Any] = {"full_collections": 0, "pause_ms_total": 0.0, "pauses_ms": []}
    started = [0.0]

    def write() -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(stats))
        os.replace(tmp, path)

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - started[0]) * 1e3
        stats["full_collections"] += 1
        stats["pause_ms_total"] = round(stats["pause_ms_total"] + pause_ms, 3)
        stats["pauses_ms"] = [*stats["pauses_ms"][-999:], round(pause_ms, 3)]
        write()

    write()
    gc.callbacks.append(on_gc)
    return on_gc


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m tests.e2e.serve PORT_FILE")
    if stats_file := os.environ.get("NAS_GC_STATS_FILE"):
        record_full_collections(Path(stats_file))
    config = uvicorn.Config("api.app:create_app", factory=True, host="127.0.0.1", port=0, log_level="warning")
    PortReportingServer(config, port_file=Path(argv[0])).run()


if __name__ == "__main__":
    main(sys.argv[1:])
