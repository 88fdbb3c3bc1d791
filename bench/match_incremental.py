"""Incremental matching latency: one changed record, and one batch of changed records, scored
against N existing customers with the stored model.

    python bench/match_incremental.py [--existing 100000] [--singles 200] [--batch 1000]
        [--database-url postgres://postgres@127.0.0.1:5432/keystone_incr_bench]
        [--keep] [--reuse] [--timeout 1800]

1. (not timed) drop and create the bench database (via psycopg on the ``postgres`` database;
   only 127.0.0.1/localhost, only a database name containing "bench"), migrate, COPY N
   synthetic customers in (`bench/match_scale.py`'s generator and loader: real normalizers,
   every record its own golden record), then one `run_batch_matching(retrain=True)`, so the
   model, the term-frequency table and the blocking-key index exist as in production.
   ``--reuse`` skips this step when the database already has an active customer model
   (a database kept by ``--keep``).
2. (not timed) ingest `singles` + `batch` new source records in a fresh system, with the
   incremental receiver disconnected (so nothing is matched at ingest): half near-duplicates of
   loaded records (a typo in the name, another system), half new customers.
3. timed: `matching.services.match_records(entity_type="customer", record_ids=[pk])` for each
   single record in turn (p50 / p95 / max; the first call includes compiling the scoring SQL),
   then one call for the whole batch.

Stops by itself: an alarm aborts the run after --timeout seconds; the database is dropped at the
end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import match_scale  # noqa: E402  (generator, COPY loader, database helpers)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_incr_bench"
SYSTEM = "incr"


def bench_target(url: str) -> dict:
    target = match_scale.scale_target(url)  # refuses other hosts / non-bench names
    if "bench" not in target["name"]:
        raise SystemExit(f"refusing database {target['name']!r}: the name must contain 'bench'")
    return target


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def has_model() -> bool:
    from django.db.utils import DatabaseError

    from matching.models import MatchModel

    try:
        return MatchModel.objects.filter(entity_type="customer", is_active=True).exists()
    except DatabaseError:
        return False


def prepare(existing: int) -> dict:
    from django.core.management import call_command

    from matching.services import run_batch_matching

    started = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    rows = match_scale.synthetic_rows(existing)
    match_scale.copy_load(rows)
    loaded = time.monotonic()
    summary = run_batch_matching(entity_type="customer", actor="bench", retrain=True)
    return {
        "load_s": round(loaded - started, 1),
        "batch_run_s": round(time.monotonic() - loaded, 1),
        "merges": summary.merges,
        "pairs_scored": summary.pairs_scored,
    }


def changed_rows(existing: int, count: int, tag: str) -> list[dict]:
    """`count` rows: half near-duplicates of loaded records, half new customers."""
    rng = random.Random(f"{match_scale.SEED}-{tag}")
    loaded = [row for rows in match_scale.synthetic_rows(existing).values() for _, row in rows]
    pools = match_scale.Pools(random.Random(f"new-{tag}"))
    fresh = match_scale.true_customers(pools, count)
    out = []
    for number in range(count):
        key = f"{SYSTEM}-{tag}-{number}"
        if number % 2 == 0:
            row = dict(rng.choice(loaded), source_key=key)
            if row.get("family_name"):
                row["family_name"] = match_scale._typo(rng, row["family_name"])
                row["name"] = f"{row['given_name']} {row['family_name']}"
            elif row.get("name"):
                row["name"] = match_scale._typo(rng, row["name"])
        else:
            row = match_scale.render(rng, next(fresh), key, noisy=False)
            row["tax_id"] = row.get("tax_id") and f"NEW{tag}{number}"
        out.append(row)
    return out


def ingest_unmatched(rows: list[dict]) -> list[int]:
    from mdm.models import SourceRecord
    from mdm.services.ingest import ingest_records
    from mdm.signals import source_records_changed

    source_records_changed.disconnect(dispatch_uid="matching.incremental")
    ingest_records(
        entity_type="customer",
        system_code=SYSTEM,
        rows=list(enumerate(rows, start=1)),
        actor="bench",
        create_system=True,
    )
    by_key = dict(
        SourceRecord.objects.filter(
            source_system__code=SYSTEM, source_key__in=[r["source_key"] for r in rows]
        ).values_list("source_key", "pk")
    )
    return [by_key[r["source_key"]] for r in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept, matched database")
    parser.add_argument("--profile", action="store_true", help="cProfile the batch call")
    args = parser.parse_args(argv)
    target = bench_target(args.database_url)

    def expire(*_):
        raise TimeoutError(f"bench timed out after {args.timeout:.0f}s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(args.timeout))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; {uptime}", flush=True)

    reuse = False
    if args.reuse:
        match_scale.setup_django(args.database_url)
        with match_scale._maintenance(target) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", [target["name"]]
            ).fetchone()
        reuse = bool(exists) and has_model()
    if not reuse:
        match_scale.recreate_database(target)
        match_scale.setup_django(args.database_url)
    try:
        from matching import services
        from mdm.models import SourceRecord

        if not reuse:
            print(f"prepare: {prepare(args.existing)}", flush=True)
        existing = SourceRecord.objects.filter(entity_type="customer").count()
        print(f"existing customer records: {existing:,}", flush=True)

        tag = str(int(time.time()))
        ids = ingest_unmatched(changed_rows(args.existing, args.singles + args.batch, tag))
        singles, batch = ids[: args.singles], ids[args.singles :]

        latencies, merges, review, steps = [], 0, 0, {}
        for pk in singles:
            started = time.perf_counter()
            summary = services.match_records(entity_type="customer", record_ids=[pk], actor="bench")
            latencies.append((time.perf_counter() - started) * 1000)
            merges += summary.merges
            review += summary.sent_to_review
            for name, spent in getattr(summary, "timings", {}).items():
                steps[name] = steps.get(name, 0.0) + spent * 1000 / len(singles)
        print(
            f"single records: n={len(latencies)} p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {_percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms "
            f"(first {latencies[0]:.0f} ms); merges {merges}, sent to review {review}; "
            f"mean per step (ms) { {k: round(v, 1) for k, v in steps.items()} }",
            flush=True,
        )
        if batch:
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            started = time.perf_counter()
            summary = services.match_records(
                entity_type="customer", record_ids=batch, actor="bench"
            )
            seconds = time.perf_counter() - started
            if profiler is not None:
                import pstats

                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            print(
                f"batch of {len(batch)}: {seconds:.2f} s; pairs scored {summary.pairs_scored}, "
                f"merges {summary.merges}, sent to review {summary.sent_to_review}; "
                f"steps (s) {getattr(summary, 'timings', {})}",
                flush=True,
            )
    finally:
        signal.alarm(0)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            match_scale.recreate_database(target, create=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
