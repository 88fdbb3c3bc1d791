"""Ingest throughput benchmark: load a generated CRM customer export the way load_source does.

    python bench/ingest.py [--records 100000]
                           [--database-url postgres://postgres@127.0.0.1:5432/keystone_bench]
                           [--chunk-size N] [--jobs N] [--keep] [--memory-records 10000]

    python bench/ingest.py --records 20000 --database-url sqlite:///var/keystone_bench.sqlite3

What it does, in order:

1. drops and recreates the bench database (PostgreSQL on 127.0.0.1/localhost only, or a SQLite
   file whose name contains "bench") and runs `migrate`;
2. writes N realistic customer rows (Faker, seeded; organizations and persons from seven
   countries, every canonical attribute that applies to the kind filled) to a CSV in a temp
   dir: not timed;
3. times loading that CSV with `mdm.services.load.load_file` (what `load_source` runs;
   system "crm", actor "bench"; on PostgreSQL it splits the file over worker processes, one
   per CPU by default, `--jobs` to choose), then times a second load of the same file, which
   must come back all unchanged (exit status 1 otherwise);
4. memory pass (--memory-records, 0 skips it): recreates the database and loads the first
   10,000 rows of the same file again as a first load, under tracemalloc. It is separate because
   tracemalloc makes this allocation-heavy path 3-6x slower and would distort the timed
   figures; the rows are limited because loads are chunked (memory is per chunk, not per file)
   and a traced 100,000-row load would take many minutes. ru_maxrss is read before this pass,
   so it covers imports, generation and the two untraced full loads;
5. prints one figure per line and drops the bench database unless --keep (which keeps it as
   the last pass left it: use --memory-records 0 to keep the full load).

Celery: REDIS_URL is ignored, so tasks run eagerly in-process (embedded mode) and nothing is
published to a shared broker; the matching task each committed chunk triggers runs inside the
timed load but finds no trained model in the fresh bench database and returns at once (the
task counts are printed; tasks run inside load workers are not counted). Client CPU is this
process plus its load workers. PostgreSQL CPU is read from /proc for the backend of this
connection, so only for one-process loads (`--jobs 1`); busy-machine runs can be told apart by
the CPU figures, not only wall time.

This is a script, not a test; it only ever touches 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import gc
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_bench"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
MAX_RECORDS = 1_000_000
SEED = 20261126
SYSTEM = "crm"
ACTOR = "bench"

COLUMNS = (
    "source_key",
    "source_updated_at",
    "kind",
    "name",
    "given_name",
    "family_name",
    "date_of_birth",
    "tax_id",
    "email",
    "phone",
    "website",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "parent_key",
    "segment",  # not declared: lands in `extra`, as CRM-only columns do
)

# locale, ISO country, ways a CRM export spells the country, a second address line
LOCALES = (
    ("en_US", "US", ("US", "USA", "United States"), None),
    ("en_GB", "GB", ("GB", "United Kingdom", "UK"), None),
    ("de_DE", "DE", ("DE", "Germany", "Deutschland"), ("{n}. OG", "Hinterhaus", "Aufgang {l}")),
    ("fr_FR", "FR", ("FR", "France"), ("Bâtiment {l}", "{n}e étage", "BP {nnn}")),
    ("nl_NL", "NL", ("NL", "Netherlands", "Nederland"), ("{n}e verdieping", "Unit {nn}")),
    ("es_ES", "ES", ("ES", "Spain", "España"), None),
    ("it_IT", "IT", ("IT", "Italy", "Italia"), None),
)
LOCALE_WEIGHTS = (30, 15, 20, 12, 8, 8, 7)
SEGMENTS = ("enterprise", "mid-market", "smb", "consumer", "public sector")


# --------------------------------------------------------------------------- arguments, safety


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="rows per transaction (default: settings)"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="load worker processes (default: as load_source)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--memory-records",
        type=int,
        default=10_000,
        help="rows of the file loaded again under tracemalloc (0: skip); default 10000",
    )
    args = parser.parse_args()
    if not 1 <= args.records <= MAX_RECORDS:
        parser.error(f"--records must be between 1 and {MAX_RECORDS}")
    if args.memory_records < 0:
        parser.error("--memory-records must be 0 or more")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be 1 or more")
    if args.chunk_size is not None and args.chunk_size < 1:
        parser.error("--chunk-size must be positive")
    try:
        args.target = bench_target(args.database_url)
    except ValueError as error:
        parser.error(str(error))
    return args


def bench_target(url: str) -> dict:
    """What to drop and recreate; refuses anything but a local bench database."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        host = (parts.hostname or "").lower()
        if host not in LOCAL_HOSTS:
            raise ValueError(f"refusing host {host or '(none)'!r}: only 127.0.0.1 or localhost")
        name = unquote(parts.path.lstrip("/"))
        if "bench" not in name or name in ("postgres", "template0", "template1"):
            raise ValueError(f"refusing database {name!r}: its name must contain 'bench'")
        return {
            "kind": "postgresql",
            "name": name,
            "host": host,
            "port": parts.port or 5432,
            "user": unquote(parts.username or "postgres"),
            "password": unquote(parts.password) if parts.password else None,
        }
    if scheme == "sqlite":
        import dj_database_url  # the parser config/settings.py uses, so this is the same file

        name = str(dj_database_url.parse(url)["NAME"] or "")
        if name in ("", ":memory:"):
            raise ValueError("give a SQLite file: sqlite:///path/to/keystone_bench.sqlite3")
        path = Path(name).resolve()
        if "bench" not in path.name:
            raise ValueError(f"refusing SQLite file {path}: its name must contain 'bench'")
        return {"kind": "sqlite", "path": path}
    raise ValueError(f"unsupported database URL scheme {scheme!r} (postgres:// or sqlite:///)")


def recreate_database(target: dict) -> None:
    if target["kind"] == "sqlite":
        drop_database(target)
        target["path"].parent.mkdir(parents=True, exist_ok=True)
        return
    with maintenance_connection(target) as conn:
        from psycopg import sql

        name = sql.Identifier(target["name"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def drop_database(target: dict) -> None:
    if target["kind"] == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target['path']}{suffix}").unlink(missing_ok=True)
        return
    with maintenance_connection(target) as conn:
        from psycopg import sql

        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(target["name"])
            )
        )


def maintenance_connection(target: dict):
    import psycopg

    assert target["host"] in LOCAL_HOSTS
    return psycopg.connect(
        host=target["host"],
        port=target["port"],
        user=target["user"],
        password=target["password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


# ----------------------------------------------------------------------------------- data


def generate_csv(path: Path, count: int) -> dict[str, int]:
    """Write `count` customer rows as a CRM export would; returns how many of each kind."""
    import phonenumbers
    from faker import Faker

    random_ = random.Random(SEED)
    fakers = {}
    for index, (locale, *_rest) in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(SEED + index)
        fakers[locale] = fake
    base = datetime(2026, 11, 1, tzinfo=UTC)
    kinds = {"organization": 0, "person": 0}
    organizations: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for number in range(1, count + 1):
            locale, country, spellings, line2_patterns = random_.choices(
                LOCALES, weights=LOCALE_WEIGHTS
            )[0]
            fake = fakers[locale]
            key = f"CRM-{number:07d}"
            is_org = random_.random() < 0.6
            line1, _, line2 = fake.street_address().partition("\n")
            if not line2:
                line2 = _second_line(fake, random_, line2_patterns)
            row = {
                "source_key": key,
                "source_updated_at": (
                    base - timedelta(seconds=random_.randrange(3 * 365 * 86400))
                ).isoformat(),
                "tax_id": fake.vat_id() if hasattr(fake, "vat_id") else fake.ein(),
                "phone": _national_phone(fake, country, random_, phonenumbers),
                "address_line1": line1,
                "address_line2": line2,
                "city": fake.city(),
                "region": fake.administrative_unit(),
                "postal_code": fake.postcode(),
                "country": random_.choices(spellings, weights=range(len(spellings) + 2, 2, -1))[0],
                "segment": random_.choice(SEGMENTS[:3] if is_org else SEGMENTS[3:4]),
            }
            if is_org:
                company = fake.company()
                domain = _domain(fake)
                row.update(
                    kind=random_.choice(("organization", "organization", "Company", "org")),
                    name=company,
                    email=f"{random_.choice(('info', 'sales', 'billing', 'contact'))}@{domain}",
                    website=random_.choice(
                        (f"https://www.{domain}/", f"http://{domain}", f"www.{domain}")
                    ),
                )
                if organizations and random_.random() < 0.05:
                    row["parent_key"] = random_.choice(organizations)
                organizations.append(key)
                if len(organizations) > 5000:
                    organizations = organizations[-5000:]
            else:
                given, family = fake.first_name(), fake.last_name()
                row.update(
                    kind=random_.choice(("person", "person", "Individual")),
                    name=f"{given} {family}",
                    given_name=given,
                    family_name=family,
                    date_of_birth=fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
                    email=fake.free_email(),
                    website=random_.choice(("https://", "http://www.")) + _domain(fake) + "/",
                )
            kinds["organization" if is_org else "person"] += 1
            writer.writerow(row)
    return kinds


def _second_line(fake, random_: random.Random, patterns) -> str:
    if patterns is None:
        return fake.secondary_address() if hasattr(fake, "secondary_address") else ""
    return random_.choice(patterns).format(
        n=random_.randint(1, 9),
        nn=random_.randint(10, 99),
        nnn=random_.randint(100, 999),
        l=random_.choice("ABCDEF"),
    )


def _national_phone(fake, region: str, random_: random.Random, phonenumbers) -> str:
    """A Faker number for `region`, re-printed in the national format (a fifth international).

    Faker also emits numbers no CRM would hold for the customer's country ("001-538-205-1993"
    for the US, foreign "+257 ..." numbers for Germany); those are drawn again.
    """
    code = phonenumbers.country_code_for_region(region)
    style = (
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
        if random_.random() < 0.2
        else phonenumbers.PhoneNumberFormat.NATIONAL
    )
    for _ in range(20):
        try:
            number = phonenumbers.parse(fake.phone_number(), region)
            if number.country_code != code or not phonenumbers.is_possible_number(number):
                continue
            text = phonenumbers.format_number(number, style)
            again = phonenumbers.parse(text, region)  # must read back as the same number
        except phonenumbers.NumberParseException:
            continue
        if (again.country_code, again.national_number) == (code, number.national_number):
            return text
    return phonenumbers.format_number(phonenumbers.example_number(region), style)


def _domain(fake) -> str:
    """A company domain that is registrable ("de.com" is a public suffix itself).

    Checked with the bundled public suffix list directly, not through mdm.normalize, so the
    generated file does not change when the normalizer does.
    """
    suffixes = _public_suffixes()
    for _ in range(20):
        domain = fake.domain_name()
        if suffixes.privatesuffix(domain) == domain:
            return domain
    return f"{fake.unique.user_name()}.com"


@functools.cache
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=False)


# ------------------------------------------------------------------------------- measuring


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from benchdb import production_like_environment

    os.environ.update(production_like_environment())  # DEBUG off: no per-query log kept
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Never publish to a shared broker: without REDIS_URL Celery runs tasks eagerly in-process
    # (embedded mode), so the matching task each committed chunk triggers runs here, on the
    # bench database (which has no trained model: the task returns "no active model").
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_EAGER", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    logging.getLogger("kombu").setLevel(logging.ERROR)  # "no hostname" for the unused broker
    from celery.signals import task_postrun

    task_postrun.connect(_count_task, weak=False)
    # The matching receiver imports its task (pandas, pyarrow: ~0.7 s CPU) on the first
    # commit; warm it up so the timed loads measure steady-state work, not a one-time import.
    with contextlib.suppress(ImportError):
        import matching.tasks  # noqa: F401


TASKS: Counter = Counter()


def _count_task(sender=None, retval=None, **kwargs) -> None:
    skipped = retval.get("skipped") if isinstance(retval, dict) else None
    TASKS[f"{getattr(sender, 'name', sender)}" + (f" (skipped: {skipped})" if skipped else "")] += 1


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


def load(path: Path, chunk_size: int | None, jobs: int | None = None, limit: int | None = None):
    """Exactly what `manage.py load_source PATH --system crm --entity customer` runs; with
    `limit`, the first rows only, in this process (the memory pass)."""
    from mdm.services.ingest import ingest_records
    from mdm.services.load import load_file
    from mdm.source_files import read_rows

    if limit is None:
        return load_file(
            path,
            entity_type="customer",
            system_code=SYSTEM,
            actor=ACTOR,
            reason=f"load_source {path.name}",
            jobs=jobs,
            chunk_size=chunk_size,
        )
    rows = read_rows(path)
    return ingest_records(
        entity_type="customer",
        system_code=SYSTEM,
        rows=rows if limit is None else islice(rows, limit),
        actor=ACTOR,
        reason=f"load_source {path.name}",
        origin=path.name,
        create_system=True,
        chunk_size=chunk_size,
    )


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_load(path: Path, chunk_size: int | None, jobs: int | None):
    """(summary, wall seconds, client CPU seconds, server CPU seconds or None).

    Client: this process and its (finished) load workers. Server: the PostgreSQL backend
    serving this connection, read from /proc (same machine) — a parallel load closes it and
    works on the workers' own connections, so then None. On a busy machine wall time grows;
    the CPU figures barely do.
    """
    gc.collect()
    backend = backend_pid()
    server = backend_cpu_seconds(backend)
    started = time.perf_counter()
    cpu = time.process_time() + children_cpu_seconds()
    summary = load(path, chunk_size, jobs)
    wall = time.perf_counter() - started
    cpu = time.process_time() + children_cpu_seconds() - cpu
    server_after = backend_cpu_seconds(backend)
    same_backend = backend is not None and backend_pid() == backend
    if server is None or server_after is None or not same_backend:
        return summary, wall, cpu, None
    return summary, wall, cpu, server_after - server


def backend_pid() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def backend_cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def row_counts() -> dict[str, int]:
    from django.apps import apps

    from mdm.models import GoldenRecord, OutboxEvent, SourceRecord, SourceReference

    counts = {
        "source_records": SourceRecord.objects.count(),
        "golden_records": GoldenRecord.objects.count(),
        "source_references": SourceReference.objects.count(),
        "outbox_events": OutboxEvent.objects.count(),
    }
    history = 0
    for model in apps.get_models():
        if model.__name__.startswith("Historical"):
            rows = model.objects.count()
            history += rows
            if rows:
                counts[f"history_rows.{model._meta.label}"] = rows
    counts["history_rows"] = history
    return counts


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
        cursor.execute("SELECT sqlite_version()")
        return f"SQLite {cursor.fetchone()[0]}"


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def memory_total_gib() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "unknown"
    return f"{pages * size / 2**30:.1f}"


def report_tasks(prefix: str) -> None:
    """Celery tasks the load triggered (run eagerly in-process), then reset the count."""
    out(f"{prefix}.celery_tasks_run", sum(TASKS.values()))
    for name, count in sorted(TASKS.items()):
        out(f"{prefix}.celery_task.{name}", count)
    TASKS.clear()


def out(label: str, value) -> None:
    print(f"{label}: {value}", flush=True)


def print_summary(prefix, summary, seconds, cpu, server_cpu, records) -> None:
    out(f"{prefix}.records", records)
    out(f"{prefix}.seconds", f"{seconds:.2f}")
    out(f"{prefix}.records_per_s", f"{records / seconds:.0f}")
    out(f"{prefix}.client_cpu_seconds", f"{cpu:.2f}")
    if server_cpu is not None:
        out(f"{prefix}.server_cpu_seconds", f"{server_cpu:.2f}")
    out(f"{prefix}.load_average_1m_after", f"{os.getloadavg()[0]:.2f}")
    for name, value in summary.counts.items():
        out(f"{prefix}.{name}", value)
    out(f"{prefix}.flagged_values", len(summary.flagged))


# ------------------------------------------------------------------------------------ main


def main() -> int:
    args = parse_args()
    target = args.target
    setup_django(args.database_url)
    import django
    import faker
    from django.conf import settings

    chunk_size = args.chunk_size or settings.KEYSTONE_INGEST_CHUNK_SIZE

    out("machine.cores", os.cpu_count())
    out("machine.memory_gib", memory_total_gib())
    out("machine.platform", platform.platform())
    out("machine.python", f"{platform.python_implementation()} {platform.python_version()}")
    out("django", django.get_version())
    out("faker", faker.VERSION)
    out("django_debug", settings.DEBUG)
    out("database.engine", target["kind"])
    out("chunk_size", chunk_size)

    recreate_database(target)
    status = 0
    try:
        migrate()
        out("database.version", database_version())

        with tempfile.TemporaryDirectory(prefix="keystone-bench-") as tmp:
            path = Path(tmp) / "crm_customers.csv"
            started = time.perf_counter()
            kinds = generate_csv(path, args.records)
            out("generate.seconds_untimed", f"{time.perf_counter() - started:.1f}")
            out("generate.organizations", kinds["organization"])
            out("generate.persons", kinds["person"])
            out("csv.bytes", path.stat().st_size)
            out("rss_before_load_mib", f"{maxrss_mib():.0f}")

            out("load_average_1m_before", f"{os.getloadavg()[0]:.2f}")
            first, *times = timed_load(path, args.chunk_size, args.jobs)
            print_summary("first_load", first, *times, args.records)
            out("rss_after_first_load_mib", f"{maxrss_mib():.0f}")
            report_tasks("first_load")
            first_counts = row_counts()
            for name, value in first_counts.items():
                out(f"after_first_load.{name}", value)

            again, *times = timed_load(path, args.chunk_size, args.jobs)
            print_summary("reload", again, *times, args.records)
            all_unchanged = again.counts["unchanged"] == args.records == again.total
            out("reload.all_unchanged", "yes" if all_unchanged else "NO")
            report_tasks("reload")
            reload_counts = row_counts()
            for name in ("source_records", "golden_records", "outbox_events", "history_rows"):
                out(f"reload.{name}_written", reload_counts[name] - first_counts[name])
            if not all_unchanged or reload_counts != first_counts:
                status = 1
            out("memory.ru_maxrss_mib", f"{maxrss_mib():.0f}")
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            out("memory.load_worker_ru_maxrss_mib", f"{children:.0f}")

            if args.memory_records:
                rows = min(args.memory_records, args.records)
                close_connections()
                recreate_database(target)
                migrate()
                gc.collect()
                tracemalloc.start()
                started = time.perf_counter()
                traced = load(path, args.chunk_size, limit=rows)
                elapsed = time.perf_counter() - started
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                out("memory_pass.records", traced.total)
                out("memory_pass.loaded", traced.counts["loaded"])
                out("memory_pass.seconds_traced", f"{elapsed:.2f}")
                out("memory.tracemalloc_peak_mib", f"{peak / 2**20:.1f}")
    finally:
        close_connections()
        if args.keep:
            out("database.kept", args.database_url)
        else:
            drop_database(target)
            out("database.dropped", "yes")
    return status


if __name__ == "__main__":
    sys.exit(main())
