"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request it answers."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """`status` and `body` are what it answers; `delay_first` makes the first request hang
    that long; `during` (if given) is called while a request is being answered."""

    def __init__(
        self,
        port: int | None = None,
        *,
        status: int = 200,
        body: bytes = b"ok",
        delay_first: float = 0,
        during=None,
    ):
        self.port = port or free_port()
        self.status = status
        self.body = body
        self.delay_first = delay_first
        self.during = during
        self.during_results: list = []
        self.requests: list[dict] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                first = not receiver.requests and not receiver.arrived.is_set()
                receiver.arrived.set()
                if first and receiver.delay_first:
                    time.sleep(receiver.delay_first)
                if receiver.during is not None:
                    receiver.during_results.append(receiver.during())
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class TrickleServer:
    """A raw TCP server on 127.0.0.1 that reads a request, then answers `answer` one byte
    every `interval` seconds (a receiver that would hold a per-read timeout forever), for
    at most `lasts` seconds."""

    def __init__(self, answer: bytes, *, interval: float = 1.5, lasts: float = 8):
        self.answer, self.interval, self.lasts = answer, interval, lasts
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(self.lasts)
            try:
                conn.recv(65536)
                started = time.monotonic()
                for byte in self.answer:
                    conn.sendall(bytes([byte]))
                    if time.monotonic() - started > self.lasts:
                        return
                    time.sleep(self.interval)
            except OSError:
                return

    def __enter__(self) -> TrickleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
        self.thread.join(self.lasts + 2)
