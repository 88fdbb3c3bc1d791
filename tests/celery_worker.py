"""Real Celery workers for tests: a worker process on the PostgreSQL test database consuming
a queue of the test's own, and a check that the test left no message behind in Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The test database (pytest-django's `test_<name>`) as a URL for a worker process."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def new_queue(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def start_worker(
    queues: list[str],
    *,
    redis_url: str,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    beat: bool = False,
    output=subprocess.DEVNULL,
    log_level: str = "warning",
) -> subprocess.Popen:
    """A worker (its own process group, so it and its children can be killed together)."""
    worker_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",  # test receivers are on 127.0.0.1
        **(env or {}),
    }
    worker_env.pop("CELERY_EAGER", None)
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}"]
    command += ["--concurrency=1", "-Q", ",".join(queues), "--without-gossip"]
    command += ["--without-mingle", "--without-heartbeat", "-l", log_level]
    if beat:
        schedule = Path(os.environ.get("TMPDIR", "/tmp")) / f"beat-{uuid.uuid4().hex[:8]}"
        command += ["-B", "-s", str(schedule)]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=worker_env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen, *, timeout: float = 20) -> None:
    """Warm shutdown (finishes the task at hand), then kill if it does not end in time."""
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, 15)
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, 9)
        worker.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 30, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def waiting_messages(redis_url: str, queue: str) -> int:
    """Messages sent to `queue` that no worker has taken yet."""
    import redis

    client = redis.Redis.from_url(redis_url)
    return sum(client.llen(key) for key in client.scan_iter(match=f"{queue}*"))


def forget_queue(redis_url: str, queue: str) -> int:
    """Delete what is left of `queue` in Redis: messages nobody took, messages a killed worker
    had taken but not acknowledged (they would come back after the visibility timeout), and
    its bindings. Returns how many messages there were."""
    import redis

    client = redis.Redis.from_url(redis_url)
    left = waiting_messages(redis_url, queue)
    bindings = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    for key in [*client.scan_iter(match=f"{queue}*"), *bindings]:
        client.delete(key)
    for tag, raw in client.hgetall("unacked").items():
        _, _, routing_key = json.loads(raw)
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
            left += 1
    return left
