"""The goal stream: another process (a planner, a kinematic motion generator) sends goals live as JSON lines over a
local TCP socket and reads one JSON reply line per message (`interprior.steer.messages`).

    import json, socket
    with socket.create_connection(("127.0.0.1", 8081)) as sock:
        stream = sock.makefile("rw")
        stream.write(json.dumps({"object": [1.0, 0.0, 0.6], "seconds": 2}) + "\\n"); stream.flush()
        print(stream.readline())          # {"ok": true, "kind": "goal", ...}

Each connection is served by a thread of its own; several may be open at once. A line longer than 64 KiB is
answered with an error and skipped; a malformed line gets its error reply and the connection stays open.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import threading

from interprior.steer.live import LiveLoop
from interprior.steer.messages import MAX_MESSAGE_BYTES, handle_message


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        peer = f"stream {self.client_address[0]}:{self.client_address[1]}"
        while True:
            try:
                raw = self.rfile.readline(MAX_MESSAGE_BYTES + 1)
            except OSError:
                return
            if not raw:
                return
            if len(raw) > MAX_MESSAGE_BYTES and not raw.endswith(b"\n"):
                self._skip_line()
            if not raw.strip():
                continue
            reply = handle_message(self.server.loop, raw.rstrip(b"\r\n"), source=peer)
            try:
                self.wfile.write((json.dumps(reply) + "\n").encode())
                self.wfile.flush()
            except OSError:
                return

    def _skip_line(self) -> None:
        """Read on to the end of an overlong line."""
        while True:
            rest = self.rfile.readline(MAX_MESSAGE_BYTES)
            if not rest or rest.endswith(b"\n"):
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, loop: LiveLoop):
        self.loop = loop
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class GoalStream:
    """A JSON-lines goal server on `host`:`port` (0: a free port) feeding `loop`."""

    def __init__(self, loop: LiveLoop, host: str = "127.0.0.1", port: int = 0):
        self._server = _Server((host, port), loop)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> "GoalStream":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="interprior-steer-stream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5.0)
        self._server.server_close()

    @property
    def address(self) -> str:
        return f"tcp://{self.host}:{self.port}" if ":" not in self.host else f"tcp://[{self.host}]:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
