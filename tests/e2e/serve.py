"""The live test server's process: uvicorn on a port the OS picks as it binds, reported in a file.

``python -m tests.e2e.serve PORT_FILE``. A port chosen by the test beforehand (bind 0, close, pass
it on) was free only then: the app's lifespan starts the embedded Ray before uvicorn binds, and
Ray's own processes took that port in between (a failed start, "address already in use"). Here
uvicorn binds port 0 itself, after the lifespan, so the port is the kernel's atomic choice; once
bound, it is written (atomically) to PORT_FILE for the test to read. uvicorn opens the listening
socket as usual (not a socket passed in by descriptor, which lost TCP_NODELAY on its connections).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

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


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m tests.e2e.serve PORT_FILE")
    config = uvicorn.Config("api.app:create_app", factory=True, host="127.0.0.1", port=0, log_level="warning")
    PortReportingServer(config, port_file=Path(argv[0])).run()


if __name__ == "__main__":
    main(sys.argv[1:])
