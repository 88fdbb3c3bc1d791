"""A batch matching run through a real Celery worker on Redis: wall-clock from the task's
submission to its result, against the time the run itself took inside the worker.

    python bench/match_worker.py [--records 10000] [--pool prefork] [--target 180]
        [--database-url postgres://postgres@127.0.0.1:5432/keystone_worker_bench]
        [--redis-url redis://127.0.0.1:6379/14] [--timeout 1800] [--keep]

1. (not timed) drop and create the bench database (only 127.0.0.1/localhost, only a database
   name containing "bench"), migrate, COPY `records` synthetic customers in (the generator and
   loader of bench/match_scale.py: real normalizers, every record its own golden record);
2. start a Celery worker (`--pool prefork`, the production pool: the task runs in a daemonic
   child, and apply forks its workers from there) consuming only a queue of its own, and wait
   until it answers a ping;
3. timed: `run_matching_task` submitted to that queue, until its result arrives.

Prints the wall-clock, the run's own time (the yardstick: what the task spent inside the
worker, so the ratio is the broker and worker overhead), and whether the wall-clock is within
`--target` seconds (the limit the end-to-end worker test used to assert); exits 1 when it is
not. Stops by itself (an alarm after --timeout seconds); the worker is stopped and the
database dropped at the end unless --keep. The queue is private: nothing is left on the broker.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import match_scale  # noqa: E402  (generator, COPY loader, database helpers)
from benchdb import LOCAL_HOSTS, bench_target, production_like_environment  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_worker_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
TARGET_SECONDS = 180


def local_redis(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "redis" or (parts.hostname or "").lower() not in LOCAL_HOSTS:
        raise SystemExit("only redis:// on 127.0.0.1 or localhost")
    return url


def setup_django(database_url: str, redis_url: str) -> None:
    os.environ.update(
        production_like_environment(),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("CELERY_EAGER", None)
    import django

    django.setup()


def start_worker(pool: str, queue: str, node: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}",
         "--concurrency=1", "-Q", queue, "-n", node, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL,
    )  # fmt: skip


def wait_for_worker(node: str, worker: subprocess.Popen, seconds: float) -> float:
    from config.celery import app

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with status {worker.returncode}")
        if app.control.ping(destination=[node], timeout=1.0):
            return time.monotonic() - started
    raise SystemExit(f"the worker did not answer within {seconds:.0f}s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--pool", choices=("prefork", "solo"), default="prefork")
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    target = bench_target(args.database_url)

    def expire(*_):
        raise TimeoutError(f"bench timed out after {args.timeout:.0f}s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(args.timeout))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; {uptime}", flush=True)

    match_scale.recreate_database(target)
    setup_django(args.database_url, local_redis(args.redis_url))
    worker = None
    try:
        from django.core.management import call_command

        from matching.tasks import run_matching_task

        call_command("migrate", interactive=False, verbosity=0)
        rows = match_scale.synthetic_rows(args.records)
        match_scale.copy_load(rows)
        loaded = sum(len(r) for r in rows.values())
        print(f"loaded {loaded:,} customer source records", flush=True)

        queue = f"bench-worker-{uuid.uuid4().hex[:8]}"
        node = f"{queue}@{socket.gethostname()}"
        worker = start_worker(args.pool, queue, node)
        print(f"worker ({args.pool}) ready in {wait_for_worker(node, worker, 120):.1f}s")

        started = time.monotonic()
        summary = run_matching_task.apply_async(args=["customer"], queue=queue).get(
            timeout=args.timeout
        )
        wall = time.monotonic() - started
    finally:
        signal.alarm(0)
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            match_scale.recreate_database(target, create=False)

    inside = summary["seconds"]
    within = wall <= args.target
    print(
        f"batch run through a {args.pool} worker, {summary['records']:,} records: "
        f"{wall:.1f} s submission to result; the run itself {inside:.1f} s "
        f"(ratio {wall / inside:.2f}); merges {summary['merges']:,}, "
        f"sent to review {summary['sent_to_review']:,}; target {args.target:.0f} s: "
        + ("met" if within else "MISSED"),
        flush=True,
    )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
