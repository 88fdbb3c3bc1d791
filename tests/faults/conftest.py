"""The fault suite: what happens to data when a process, the broker, a receiver or the
database connection goes away mid-work. Runs on PostgreSQL with a Redis server binary; every
process it kills or stops is its own (a redis-server on a free port of 127.0.0.1, a Celery
worker it started, its own database connection) — never the machine's shared services.
Each test prints what it proved."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.matching.conftest import customer_model, febrl_sample, load_febrl  # noqa: F401


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own on 127.0.0.1 (no persistence), to stop and start."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("fault suite: needs the redis-server command (a broker of its own to stop)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proved(capsys):
    """Print what a test proved, past pytest's capture."""

    def say(message: str) -> None:
        with capsys.disabled():
            print(f"\n  PROVED: {message}")

    return say


class OwnBroker:
    """Tasks sent to the test's own Redis (not the broker the settings name), for a worker."""

    def __init__(self, url: str):
        self.url = url

    def send(self, task, *args, queue: str, **kwargs) -> None:
        from config.celery import app

        eager, app.conf.task_always_eager = app.conf.task_always_eager, False
        try:
            with app.connection_for_write(self.url) as connection:
                task.apply_async(args=args, kwargs=kwargs, queue=queue, connection=connection)
        finally:
            app.conf.task_always_eager = eager


@pytest.fixture
def own_broker(redis_server):
    return OwnBroker(redis_server.url)
