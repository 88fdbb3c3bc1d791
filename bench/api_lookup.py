"""API benchmark: cross-reference lookups and batch ingest through gunicorn on PostgreSQL,
against a bare Django view doing one indexed query (so the API's overhead is a ratio).

    python bench/api_lookup.py [--records 100000] [--workers 2] [--duration 10]
                               [--connections 8] [--ingest-records 10000]
                               [--service-requests 2000]
                               [--database-url postgres://postgres@127.0.0.1:5432/keystone_api_bench]
                               [--keep]

What it does, in order (only ever 127.0.0.1; every phase bounded; stops by itself):

1. drops and recreates the bench database (a name containing "bench", on 127.0.0.1 or
   localhost only) and migrates it;
2. loads N golden customers with SQL COPY (crm keys CRM-0000001…, values from the real
   normalizers), every fifth also with an erp record on the same golden record, so a fifth
   of the xrefs answer two systems' keys; not timed (see `load_customers`);
3. issues an integration token for "crm" and starts gunicorn (sync workers, --workers)
   with KEYSTONE_BENCH_VIEWS=1 on a free 127.0.0.1 port;
4. with wrk (random keys, --connections, --duration each): the bare view
   /bench/bare-xref/crm/KEY, then GET /api/v1/xref/customer/crm/KEY (requests/s, p99), then
   POST /api/v1/xref/customer/lookup with 1,000 random keys per request (keys/s);
5. batch ingest: --ingest-records new customers POSTed as JSON arrays of 1,000 from 2
   client threads (records/s);
6. service time, in this process, one request at a time through Django's WSGI handler (as
   gunicorn calls it, no HTTP): Python CPU plus the PostgreSQL backend's CPU per request
   (from /proc), for the bare view, the xref GET and the batch lookup — what a request costs,
   whatever else the machine is doing, where the wrk figures depend on the load;
7. prints the figures and the load average before and after the wrk runs, kills gunicorn,
   drops the bench database unless --keep.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchdb import bench_target, maintenance, production_like_environment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_api_bench"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CHUNK = 5000
LOOKUP_KEYS = 1000
BODIES = 50  # distinct batch lookup bodies, sent in turn
INGEST_BATCH = 1000
SEED = 20261126


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (1-8)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (≤ 60)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--ingest-records", type=int, default=10_000)
    parser.add_argument(
        "--service-requests", type=int, default=2_000, help="in-process single requests"
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if not 1 <= args.workers <= 8 or not 1 <= args.duration <= 60:
        parser.error("--workers 1-8, --duration 1-60")
    if not 1_000 <= args.records <= 1_000_000 or not 0 <= args.ingest_records <= 200_000:
        parser.error("--records 1,000-1,000,000, --ingest-records 0-200,000")
    if not 0 <= args.service_requests <= 100_000:
        parser.error("--service-requests 0-100,000")
    return args


def setup_django(url: str) -> None:
    os.environ.update(
        production_like_environment(),
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        KEYSTONE_BENCH_VIEWS="1",
        DB_CONN_MAX_AGE="600",
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def customer(number: int, system: str = "crm") -> dict:
    rng = random.Random(number)
    country = rng.choice(["DE", "FR", "US", "GB", "NL", "AT", "CH"])
    return {
        "source_key": f"{system.upper()}-{number:07d}",
        "kind": "organization",
        "name": f"Company {number} {rng.choice(['GmbH', 'SA', 'Inc.', 'Ltd', 'BV', 'AG'])}",
        "tax_id": f"{country}{number:09d}",
        "email": f"info@company{number}.example",
        "city": rng.choice(["Berlin", "Paris", "Boston", "London", "Utrecht", "Wien", "Zug"]),
        "country": country,
        "source_updated_at": "2026-11-01T00:00:00Z",
    }


def load_customers(count: int) -> None:
    """COPY N crm customers, each its own golden record, and every fifth also in erp linked
    to the same golden record — the shape ingest + matching leave behind, in seconds instead
    of the minutes the ingest service needs (its throughput is bench/ingest.py's subject).
    Values are normalized with the real normalizers; history is not written (not read here).
    """
    from django.db import connection
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from mdm.entities import get_entity
    from mdm.models import GoldenRecord, SourceRecord, new_golden_id
    from mdm.normalize import normalize_record
    from mdm.services.ingest import get_source_system

    entity = get_entity("customer")
    system_ids = {code: get_source_system(code, create=True).pk for code in ("crm", "erp")}
    now = timezone.now()
    golden_rows, record_rows = [], []
    for number in range(1, count + 1):
        golden_id = new_golden_id("customer")
        systems = ("crm", "erp") if number % 5 == 0 else ("crm",)
        values = {}
        for system in systems:
            row = customer(number, system)
            normalized = normalize_record(entity, row)
            values = values or normalized.values
            record_rows.append(
                (
                    "customer",
                    system_ids[system],
                    row["source_key"],
                    Jsonb(row),
                    Jsonb(normalized.values),
                    Jsonb(normalized.keys),
                    Jsonb({}),
                    Jsonb({}),
                    Jsonb({}),
                    f"{number:064d}",
                    now,
                    now,
                    now,
                    False,
                    golden_id,
                    "new" if system == "crm" else "auto",
                    now,
                )
            )
        golden_rows.append(
            (golden_id, "customer", "active", entity.display_name(values), Jsonb(values))
            + (Jsonb({}), now, now)
        )
    golden_columns = (
        "id, entity_type, status, display_name, values, lineage, created_at, updated_at"
    )
    record_columns = (
        "entity_type, source_system_id, source_key, raw, attributes, match_keys, invalid, extra,"
        ' "references", payload_hash, received_at, updated_at, linked_at, deleted, golden_id,'
        " link_method, source_updated_at"
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table, columns, rows in (
            (GoldenRecord._meta.db_table, golden_columns, golden_rows),
            (SourceRecord._meta.db_table, record_columns, record_rows),
        ):
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute("VACUUM ANALYZE")  # hint bits and visibility map, as autovacuum leaves them


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        **production_like_environment(),
        "DATABASE_URL": url,
        "KEYSTONE_BENCH_VIEWS": "1",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers), "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit("gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


LUA_GET = """
local n = {records}
local prefix = "{prefix}"
wrk.headers["Authorization"] = "{auth}"
math.randomseed({seed})
request = function()
  return wrk.format("GET", prefix .. string.format("CRM-%07d", math.random(1, n)))
end
"""

LUA_BODIES = """
local bodies = {{}}
for line in io.lines("{bodies}") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "{auth}"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "{path}", nil, bodies[i])
end
"""


def wrk(script: str, base: str, connections: int, duration: int, tmp: Path) -> dict:
    path = tmp / f"script-{time.monotonic_ns()}.lua"
    path.write_text(script)
    result = subprocess.run(
        [
            WRK,
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            "--timeout",
            "5s",
        ]
        + ["-s", str(path), base],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    )
    text = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99[2]]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": rps,
        "p99_ms": float(p99[1]) * scale,
        "non_2xx": int(errors[1]) if errors else 0,
        "raw": text,
    }


def batch_ingest(base: str, token: str, total: int, start: int) -> float:
    """POST `total` new customers in batches of 1,000 from 2 threads; returns records/s."""
    import requests

    batches = [
        [customer(n, "crm") for n in range(first, min(first + INGEST_BATCH, start + total))]
        for first in range(start, start + total, INGEST_BATCH)
    ]
    bodies = [json.dumps(batch) for batch in batches]
    failures: list[str] = []
    lock = threading.Lock()

    def worker():
        with requests.Session() as session:
            while True:
                with lock:
                    if not bodies:
                        return
                    body = bodies.pop()
                response = session.post(
                    f"{base}/api/v1/sources/crm/customer/batch",
                    data=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                    timeout=120,
                )
                if response.status_code != 200 or response.json()["counts"]["loaded"] != len(
                    json.loads(body)
                ):
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"batch ingest failed: {failures[:3]}")
    return total / elapsed


def backend_cpu_seconds() -> float | None:
    """CPU time used so far by this process's PostgreSQL backend (local server, Linux)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_times(token: str, records: int, requests: int) -> dict:
    """Per request, one at a time, through Django's WSGI handler: (Python CPU ms, PostgreSQL
    backend CPU ms). Independent of other load, unlike wrk's figures (within cache effects)."""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    rng = random.Random(SEED + 1)

    def call(method: str, path: str, body: bytes = b"") -> None:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
        statuses = []
        result = application(
            environ, lambda status, headers, exc_info=None: statuses.append(status)
        )
        try:
            b"".join(result)
        finally:
            result.close()
        if not statuses[0].startswith("200"):
            raise SystemExit(f"service time: {method} {path} answered {statuses[0]}")

    def key() -> str:
        return f"CRM-{rng.randint(1, records):07d}"

    def measure(request, count: int, warm_up: int) -> tuple[float, float | None]:
        for _ in range(warm_up):  # connection, prepared statements, the pages read
            request()
        server, cpu = backend_cpu_seconds(), time.process_time()
        for _ in range(count):
            request()
        cpu, after = time.process_time() - cpu, backend_cpu_seconds()
        server = None if server is None or after is None else after - server
        return cpu / count * 1000, None if server is None else server / count * 1000

    bodies = [
        json.dumps({"keys": [{"system": "crm", "source_key": key()} for _ in range(1000)]}).encode()
        for _ in range(BODIES)
    ]
    batch = itertools.cycle(bodies)
    return {
        "bare view": measure(
            lambda: call("GET", f"/bench/bare-xref/crm/{key()}"), requests, requests // 10
        ),
        "xref GET": measure(
            lambda: call("GET", f"/api/v1/xref/customer/crm/{key()}"), requests, requests // 10
        ),
        "batch lookup (1,000 keys)": measure(
            lambda: call("POST", "/api/v1/xref/customer/lookup", next(batch)),
            max(requests // 20, 1),
            warm_up=BODIES,
        ),
    }


def main() -> int:
    args = parse_args()
    target = bench_target(args.database_url)
    if not Path(WRK).exists():
        raise SystemExit("wrk not found (apt-get install wrk)")
    maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
    maintenance(target, "CREATE DATABASE {}")
    gunicorn = None
    try:
        setup_django(args.database_url)
        from django.core.management import call_command
        from django.db import connection, connections

        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        load_customers(args.records)
        load_seconds = time.perf_counter() - started
        from api.models import IntegrationToken
        from mdm.models import GoldenRecord
        from mdm.services.ingest import get_source_system

        _, token = IntegrationToken.issue(get_source_system("crm"))
        golden_count = GoldenRecord.objects.filter(status="active").count()
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
        connections.close_all()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = start_gunicorn(args.database_url, port, args.workers)
        auth = f"Bearer {token}"
        tmp = Path(tempfile.mkdtemp(prefix="keystone-api-bench-"))
        rng = random.Random(SEED)
        bodies = tmp / "bodies.ndjson"
        with bodies.open("w") as handle:
            for _ in range(BODIES):
                keys = [
                    {"system": "crm", "source_key": f"CRM-{rng.randint(1, args.records):07d}"}
                    for _ in range(LOOKUP_KEYS)
                ]
                handle.write(json.dumps({"keys": keys}) + "\n")

        def single(prefix):
            script = LUA_GET.format(records=args.records, prefix=prefix, auth=auth, seed=SEED)
            return wrk(script, base, args.connections, args.duration, tmp)

        single("/bench/bare-xref/crm/")  # warm-up: connections, caches
        single("/api/v1/xref/customer/crm/")
        load_before = os.getloadavg()
        bare = single("/bench/bare-xref/crm/")
        api = single("/api/v1/xref/customer/crm/")
        lookup = wrk(
            LUA_BODIES.format(bodies=bodies, auth=auth, path="/api/v1/xref/customer/lookup"),
            base,
            args.connections,
            args.duration,
            tmp,
        )
        ingest_rps = (
            batch_ingest(base, token, args.ingest_records, start=args.records + 1)
            if args.ingest_records
            else 0.0
        )
        load_after = os.getloadavg()
        shutil.rmtree(tmp, ignore_errors=True)
        stop(gunicorn)
        services = (
            service_times(token, args.records, args.service_requests)
            if args.service_requests
            else {}
        )
        for label, run in (("bare", bare), ("api", api), ("lookup", lookup)):
            if run["non_2xx"]:
                print(run["raw"], file=sys.stderr)
                raise SystemExit(f"{label}: {run['non_2xx']} non-2xx responses")

        def out(label, value):
            print(f"{label:42} {value}")

        out(
            "machine",
            f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        )
        out("database", f"PostgreSQL {pg_version}")
        out("golden customers (active)", golden_count)
        out("load (not timed in figures) s", f"{load_seconds:.1f}")
        out("gunicorn sync workers", args.workers)
        out("wrk connections / seconds per run", f"{args.connections} / {args.duration}")
        out(
            "load avg 1/5/15 min, before / after wrk",
            " / ".join(" ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after)),
        )
        out("bare view requests/s", f"{bare['rps']:.0f}")
        out("bare view p99 ms", f"{bare['p99_ms']:.2f}")
        out("xref GET requests/s", f"{api['rps']:.0f}")
        out("xref GET p99 ms", f"{api['p99_ms']:.2f}")
        out("xref GET / bare view", f"{api['rps'] / bare['rps']:.0%}")
        out("batch lookup keys/s (1,000 per request)", f"{lookup['rps'] * LOOKUP_KEYS:.0f}")
        out("batch lookup p99 ms", f"{lookup['p99_ms']:.2f}")
        out("batch ingest records/s (new, 1,000/batch)", f"{ingest_rps:.0f}")
        for label, (python_ms, server_ms) in services.items():
            server = "n/a" if server_ms is None else f"{server_ms:.3f}"
            total = "" if server_ms is None else f" = {python_ms + server_ms:.3f}"
            out(f"service ms, {label}", f"python {python_ms:.3f} + postgres {server}{total}")
        return 0
    finally:
        if gunicorn is not None:
            stop(gunicorn)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        if not args.keep:
            maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
