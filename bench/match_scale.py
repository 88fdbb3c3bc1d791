"""Matching at scale: synthetic customers end to end (train, predict, cluster, apply to the
database), against bare Splink on the same frame as the yardstick.

    python bench/match_scale.py [--sizes 10000,100000] [--timeout 1800]
                                [--database-url postgres://postgres@127.0.0.1:5432/keystone_scale]

Per size, each step in its own process (so peak RSS is per step and a stuck step is killed):

1. load (not timed into the figures): drop and create the bench database, migrate, generate N
   synthetic customer source records in three systems (about 1.3 records per real customer:
   typos, legal-form variants, missing fields, moves; persons and organizations), normalize
   them with the real normalizers and COPY them in, each its own golden record (the state
   ingest leaves before matching; ingest speed is bench/ingest.py's subject);
2. end to end: `run_batch_matching(entity_type="customer", retrain=True)` — frame, train,
   blocking-key index and term frequencies, predict, cluster with constraints, apply merges,
   store review candidates — wall time, peak RSS, and the step timings of its MatchRun;
3. bare Splink: the same frame (read with `build_frame`, not timed), a Linker with the same
   settings, the same training calls (a failed EM session's prior and comparisons put back,
   as `matching.training` does: Splink 5.0.0 leaves them reduced), predict at the review
   threshold and Splink's own
   `cluster_pairwise_predictions_at_threshold` at the auto-link threshold; nothing written.

Prints one line per size and step and a summary table; the ratio is end to end / bare Splink.
Only ever touches a local PostgreSQL database named keystone_scale (or containing "bench"),
which it drops at the end. Every child process has a timeout, so the script stops by itself;
a size that times out is reported as partial with the steps it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_scale"
SEED = 20261126
DUPLICATE_SHARE = 0.3  # extra records per real customer, on average
SYSTEMS = ("crm", "erp", "billing")


# ----------------------------------------------------------------------------- database


def scale_target(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit("the scale bench runs on PostgreSQL only")
    host = (parts.hostname or "").lower()
    name = unquote(parts.path.lstrip("/"))
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing host {host!r}: only 127.0.0.1 or localhost")
    if name != "keystone_scale" and "bench" not in name:
        raise SystemExit(f"refusing database {name!r}: keystone_scale or a name with 'bench'")
    return {
        "name": name,
        "host": host,
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password) if parts.password else None,
    }


def _maintenance(target: dict):
    import psycopg

    return psycopg.connect(
        host=target["host"],
        port=target["port"],
        user=target["user"],
        password=target["password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def recreate_database(target: dict, *, create: bool = True) -> None:
    from psycopg import sql

    with _maintenance(target) as conn:
        name = sql.Identifier(target["name"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from benchdb import production_like_environment

    os.environ.update(production_like_environment())  # DEBUG off: no per-query log kept
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)  # eager tasks, never a shared broker
    os.environ.pop("CELERY_EAGER", None)
    sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    for name in ("splink", "kombu", "matching"):
        logging.getLogger(name).setLevel(logging.ERROR)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------ synthetic


class Pools:
    """Value pools drawn once from Faker (seeded), then combined with `random`: Faker per row
    would dominate the load time at 1M rows."""

    def __init__(self, rng: random.Random):
        from faker import Faker

        fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
        fake.seed_instance(SEED)
        self.given = sorted({fake.first_name() for _ in range(6000)})
        self.family = sorted({fake.last_name() for _ in range(12000)})
        self.streets = sorted({fake.street_name() for _ in range(20000)})
        self.cities = sorted({fake.city() for _ in range(8000)})
        self.tails = (
            "tech", "soft", "ia", "ex", "brook", "field", "gate", "line", "point", "ridge",
            "stone", "works", "light", "view", "core", "mark", "port", "dale", "forge", "well",
        )  # fmt: skip
        self.industries = (
            "Logistics", "Systems", "Foods", "Energy", "Consulting", "Retail", "Software",
            "Partners", "Health", "Trading", "Media", "Capital", "Technologies", "Manufacturing",
            "Pharmaceuticals", "Solutions", "Industries", "Engineering", "Analytics", "Services",
            "Robotics", "Materials", "Networks", "Construction",
        )  # fmt: skip
        self.legal = (("Inc", "Inc.", "Incorporated", ""), ("LLC", "L.L.C.", ""),
                      ("Ltd", "Limited", "Ltd."), ("GmbH", "G.m.b.H.", ""))  # fmt: skip
        self.mail = ("gmail.com", "yahoo.com", "outlook.com", "gmx.de", "orange.fr")
        self.rng = rng

    def brand(self) -> str:
        """An organization's brand: a family name ("Smith": ~1,700, so "Smith Consulting"
        recurs as it does in real registers), one with a tail ("Smithbrook": ~34,000) or two
        ("Smith & Jones": ~2.9 M). A pool that does not grow with the data (the 6,000 brands
        drawn before) makes 1M customers out of ~70,000 names, each shared by ten companies,
        which real customer data is not."""
        rng, roll = self.rng, self.rng.random()
        if roll < 0.3:
            return rng.choice(self.family)
        if roll < 0.8:
            return rng.choice(self.family) + rng.choice(self.tails)
        return f"{rng.choice(self.family)} & {rng.choice(self.family)}"


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def true_customers(pools: Pools, count: int):
    rng = pools.rng
    for number in range(count):
        city = rng.choice(pools.cities)
        address = f"{rng.randint(1, 9999)} {rng.choice(pools.streets)}"
        postal = f"{rng.randint(10000, 99999)}"
        phone = f"+1{rng.randint(2012000000, 9899999999)}"
        if rng.random() < 0.7:
            brand = pools.brand()
            industry = rng.choice(pools.industries)
            legal = rng.choice(pools.legal)
            stem = brand.lower().replace(" & ", "-")
            domain = f"{stem}{industry.lower()}{number % 97}.com"
            yield {
                "kind": "organization",
                "name": (brand, industry, legal),
                "tax_id": f"TX{number:09d}",
                "email": f"info@{domain}",
                "website": f"https://www.{domain}/",
                "phone": phone,
                "address_line1": address,
                "city": city,
                "postal_code": postal,
                "country": "US",
            }
        else:
            given, family = rng.choice(pools.given), rng.choice(pools.family)
            yield {
                "kind": "person",
                "given_name": given,
                "family_name": family,
                "date_of_birth": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                "email": f"{given}.{family}{rng.randint(1, 99)}@{rng.choice(pools.mail)}".lower(),
                "phone": phone,
                "address_line1": address,
                "city": city,
                "postal_code": postal,
                "country": "US",
            }


def render(rng: random.Random, truth: dict, key: str, noisy: bool) -> dict:
    """One source record of `truth`; copies after the first carry noise."""
    row = {"source_key": key, "kind": truth["kind"]}
    for column, value in truth.items():
        if column in ("kind", "name", "given_name", "family_name"):
            continue
        if noisy and rng.random() < 0.2:
            continue  # this system does not have the value
        row[column] = value
    if truth["kind"] == "organization":
        brand, industry, legal = truth["name"]
        if noisy and rng.random() < 0.08:
            brand = _typo(rng, brand)
        row["name"] = f"{brand} {industry} {rng.choice(legal) if noisy else legal[0]}".strip()
    else:
        given, family = truth["given_name"], truth["family_name"]
        if noisy and rng.random() < 0.08:
            family = _typo(rng, family)
        row.update(given_name=given, family_name=family, name=f"{given} {family}")
    if noisy and rng.random() < 0.05 and "address_line1" in row:
        row["address_line1"] = f"{rng.randint(1, 9999)} {row['address_line1'].split(' ', 1)[1]}"
    return row


def synthetic_rows(size: int) -> dict[str, list[tuple[int, dict]]]:
    """`size` customer source records spread over SYSTEMS, deterministic."""
    rng = random.Random(SEED)
    pools = Pools(rng)
    per_system: dict[str, list[tuple[int, dict]]] = {s: [] for s in SYSTEMS}
    made = 0
    for number, truth in enumerate(true_customers(pools, size)):
        copies = 1 + (1 if rng.random() < DUPLICATE_SHARE else 0)
        systems = rng.sample(SYSTEMS, copies)
        for copy, system in enumerate(systems):
            if made >= size:
                return per_system
            key = f"{system}-{number}-{copy}"
            per_system[system].append((made, render(rng, truth, key, noisy=copy > 0)))
            made += 1
    return per_system


# -------------------------------------------------------------------------------- phases


def copy_load(rows: dict[str, list[tuple[int, dict]]]) -> None:
    """Every record its own new golden record — what ingest leaves before matching — written
    with SQL COPY (as bench/api_lookup.py does): the ingest service runs ~250 records/s on
    this machine, which is bench/ingest.py's subject, not this one's. Values and keys come
    from the real normalizers; no history rows (matching does not read them)."""
    from django.db import connection
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from mdm.entities import get_entity
    from mdm.models import GoldenRecord, SourceRecord, new_golden_id
    from mdm.normalize import normalize_record
    from mdm.services.ingest import get_source_system

    entity = get_entity("customer")
    now = timezone.now()
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
        for system, system_rows in rows.items():
            system_id = get_source_system(system, create=True).pk
            goldens, records = [], []
            for number, row in system_rows:
                normalized = normalize_record(entity, row)
                golden_id = new_golden_id("customer")
                goldens.append(
                    (golden_id, "customer", "active", entity.display_name(normalized.values))
                    + (Jsonb(normalized.values), Jsonb({}), now, now)
                )
                records.append(
                    ("customer", system_id, row["source_key"], Jsonb(row))
                    + (Jsonb(normalized.values), Jsonb(normalized.keys), Jsonb({}), Jsonb({}))
                    + (Jsonb({}), f"{number:064d}", now, now, now, False, golden_id, "new", now)
                )
            for table, columns, table_rows in (
                (GoldenRecord._meta.db_table, golden_columns, goldens),
                (SourceRecord._meta.db_table, record_columns, records),
            ):
                with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for table_row in table_rows:
                        copy.write_row(table_row)
        cursor.execute("ANALYZE")


def phase_load(size: int) -> dict:
    started = time.monotonic()
    rows = synthetic_rows(size)
    generated = time.monotonic() - started
    copy_load(rows)
    return {
        "records": sum(len(r) for r in rows.values()),
        "generate_s": round(generated, 1),
        "load_s": round(time.monotonic() - started - generated, 1),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def phase_e2e() -> dict:
    from matching.models import MatchRun
    from matching.services import run_batch_matching

    started = time.monotonic()
    summary = run_batch_matching(entity_type="customer", actor="bench:match_scale", retrain=True)
    wall = time.monotonic() - started
    run = MatchRun.objects.get(pk=summary.run_id)
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        # the apply workers are forked from this process: their pages are mostly its own,
        # shared until written, so this is not to be added to the figure above
        "apply_worker_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        ),
        "records": summary.records,
        "pairs_scored": summary.pairs_scored,
        "merges": summary.merges,
        "sent_to_review": summary.sent_to_review,
        "goldens": [summary.goldens_before, summary.goldens_after],
        "timings": run.timings,
    }


def phase_bare() -> dict:
    """Bare Splink on the frame run_batch_matching reads: train, predict, cluster."""
    import duckdb
    from django.conf import settings
    from splink import DuckDBAPI, Linker

    from matching.frame import build_frame
    from matching.specs import get_spec, settings_for, thresholds_for
    from matching.training import _u_max_pairs

    spec = get_spec("customer")
    thresholds = thresholds_for("customer")
    frame = build_frame(spec)  # reading the database is not Splink's work: not timed
    timings = {}
    em_failed = 0
    started = mark = time.monotonic()
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {settings.KEYSTONE_MATCH_DUCKDB_THREADS}")
    con.execute(f"SET memory_limit = '{settings.KEYSTONE_MATCH_DUCKDB_MEMORY}'")
    try:
        db = DuckDBAPI(con)
        records = db.register(frame, dataset_display_name="source_records")
        linker = Linker(records, settings_for(spec, retain_intermediate=False))
        training = linker.training
        training.estimate_probability_two_random_records_match(
            list(spec.deterministic_rules), recall=spec.deterministic_recall
        )
        training.estimate_u_using_random_sampling(max_pairs=_u_max_pairs(frame.num_rows), seed=42)
        for rule in spec.training_rules:
            core = linker._settings_obj.core_model_settings
            prior, comparisons = core.probability_two_random_records_match, list(core.comparisons)
            try:
                training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True
                )
            except Exception:  # an empty block or a numeric error, as train() skips it
                # Splink 5.0.0 leaves a failed session's prior and its reduced comparison list
                # (without the comparisons the rule blocks on) on the linker: put them back,
                # or the yardstick predicts without them (at 100,000 customers the name rule
                # fails and took the three name comparisons with it).
                core = linker._settings_obj.core_model_settings  # the session may replace it
                core.probability_two_random_records_match = prior
                core.comparisons = comparisons
                em_failed += 1
        now = time.monotonic()
        timings["train"], mark = round(now - mark, 3), now
        predictions = linker.inference.predict(
            threshold_match_probability=thresholds.review, warning_mode="never"
        )
        now = time.monotonic()
        timings["predict"], mark = round(now - mark, 3), now
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=thresholds.auto_link
        )
        cluster_count = con.execute(
            f"select count(distinct cluster_id) from {clusters.physical_name}"
        ).fetchall()[0][0]
        pairs = con.execute(f"select count(*) from {predictions.physical_name}").fetchall()[0][0]
        timings["cluster"] = round(time.monotonic() - mark, 3)
    finally:
        con.close()
    return {
        "wall_s": round(time.monotonic() - started, 1),
        "peak_rss_mib": round(peak_rss_mib()),
        "records": frame.num_rows,
        "pairs_scored": pairs,
        "clusters": cluster_count,
        "em_sessions_failed": em_failed,
        "timings": timings,
    }


def blocking_counts() -> dict:
    """Comparisons the prediction blocking rules generate on this data (Splink's estimate
    from a 5% sample for big frames, exact below 200k)."""
    import duckdb
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    from matching.frame import build_frame
    from matching.specs import get_spec

    spec = get_spec("customer")
    frame = build_frame(spec)
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 2")
    try:
        records = DuckDBAPI(con).register(frame, dataset_display_name="source_records")
        counts = count_comparisons_from_blocking_rules(
            records,
            blocking_rules=list(spec.blocking_rules),
            link_type="dedupe_only",
            record_sample_proportion=1.0 if frame.num_rows <= 200_000 else 0.05,
        )
    finally:
        con.close()
    total = int(counts[-1]["cumulative_comparison_count"]) if counts else 0
    return {
        "comparisons": total,
        "per_million_records": round(total / frame.num_rows * 1e6) if frame.num_rows else 0,
        "estimated": frame.num_rows > 200_000,
    }


PHASES = {"load": phase_load, "e2e": phase_e2e, "bare": phase_bare, "blocking": blocking_counts}


def child(args) -> int:
    setup_django(args.database_url)
    if args.phase == "load":
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        result = phase_load(args.size)
    else:
        result = PHASES[args.phase]()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def run_child(phase: str, size: int, url: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--child", phase, "--size", str(size)]
    command += ["--database-url", url]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "wall_s": round(timeout)}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    return {"error": " | ".join(tail), "wall_s": round(time.monotonic() - started, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per step")
    parser.add_argument("--keep", action="store_true", help="keep the last size's database")
    parser.add_argument("--child", dest="phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        return child(args)

    target = scale_target(args.database_url)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; {uptime}", flush=True)
    results = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            recreate_database(target)
            row = {"size": size}
            for phase in ("load", "blocking", "e2e", "bare"):
                row[phase] = run_child(phase, size, args.database_url, args.timeout)
                print(f"{size:>9,} {phase:<8} {json.dumps(row[phase])}", flush=True)
                if "error" in row[phase] and phase == "load":
                    break
            results.append(row)
    finally:
        if not args.keep:
            recreate_database(target, create=False)
    print("\n     size  e2e s  bare s  ratio  e2e RSS MiB  bare RSS MiB  comparisons/M records")
    for row in results:
        e2e, bare = row.get("e2e", {}), row.get("bare", {})
        ratio = (
            f"{e2e['wall_s'] / bare['wall_s']:.2f}"
            if e2e.get("wall_s") and bare.get("wall_s") and "error" not in e2e
            else "-"
        )
        per_million = row.get("blocking", {}).get("per_million_records", "-")
        print(
            f"{row['size']:>9,}  {e2e.get('wall_s', '-'):>5}  {bare.get('wall_s', '-'):>6}  "
            f"{ratio:>5}  {e2e.get('peak_rss_mib', '-'):>11}  {bare.get('peak_rss_mib', '-'):>12}"
            f"  {per_million:>12}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
