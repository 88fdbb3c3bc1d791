"""Stewardship pages benchmark: server time and query count of every steward page at
100,000 golden customers and 10,000 open match candidates, on PostgreSQL.

    python bench/steward_pages.py [--customers 100000] [--candidates 10000] [--requests 20]
                                  [--database-url postgres://postgres@127.0.0.1:5432/keystone_steward_bench]
                                  [--keep] [--pages-only]

What it does, in order (only ever 127.0.0.1; every phase bounded; stops by itself):

1. drops and recreates the bench database (a name containing "bench", on 127.0.0.1 or
   localhost only) through the `postgres` maintenance database, and migrates it;
2. loads --customers customers generated with a seeded Faker through the real ingest service
   (`ingest_records`, chunks of 2,000) spread over four source systems, each record its own
   golden record; about one in eight is a noisy duplicate of another system's record;
3. loads the stakes: contracts on random customers, and one "showcase" customer with 40
   member records in four systems (merged by `merge_many`), 300 contracts, 200 entitlements
   and 60 child accounts; auto-links 2,000 duplicate pairs with `merge_many` (so golden records
   with several members and an auto-link rate exist); adds a few finished match runs;
4. bulk-creates --candidates open MatchCandidate rows over pairs of those source records
   (mostly the duplicates, some same-city strangers), probabilities 0.5–0.95, a per-attribute
   explanation shaped like the matcher's, ages spread over 60 days — not the matcher's work
   (bench/match_* measures that), only the queue's content;
5. creates a steward (`setup_roles`), and with Django's test Client (force_login) requests
   each page --requests times after one warm-up request: median and p95 milliseconds and the
   number of SQL queries per request (CaptureQueriesContext);
6. prints the figures, drops the bench database unless --keep.

--pages-only skips 1–4 and times the pages again on a database an earlier --keep run left
(to compare a change to the pages without reloading for 8 minutes).

Incremental matching on ingest is disconnected for the load (no model is trained here, and
the load is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from benchdb import bench_target, maintenance, production_like_environment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_steward_bench"
SYSTEMS = ("crm", "erp", "billing", "shop")
SEED = 20261126
CHUNK = 2000
SHOWCASE_MEMBERS = 40
SHOWCASE_CONTRACTS = 300
SHOWCASE_ENTITLEMENTS = 200
SHOWCASE_CHILDREN = 60
AUTO_LINKS = 2000
STAKE_CONTRACTS = 5000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="time the pages on a database kept by an earlier --keep run (no load; implies --keep)",
    )
    args = parser.parse_args()
    args.keep = args.keep or args.pages_only
    if not 5_000 <= args.customers <= 300_000:
        parser.error("--customers 5,000-300,000")
    if not 100 <= args.candidates <= args.customers // 8:
        parser.error("--candidates 100 to customers/8")
    if not 1 <= args.requests <= 200:
        parser.error("--requests 1-200")
    return args


def setup_django(url: str) -> None:
    os.environ.update(
        production_like_environment(),
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from mdm.signals import source_records_changed

    source_records_changed.disconnect(dispatch_uid="matching.incremental")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------ the data


def company_rows(count: int) -> dict[str, list[dict]]:
    """`count` customer rows spread over the source systems; about one in eight is a noisy copy of a
    company already in another system (`dup_of` = (system, key) of the original)."""
    from faker import Faker

    Faker.seed(SEED)
    fake = Faker("en_US")
    rng = random.Random(SEED)
    # Faker is slow per call (~0.3 ms here); draw pools once and combine them.
    names = [fake.company() for _ in range(min(count, 20_000))]
    streets = [fake.street_address() for _ in range(3_000)]
    places = [(fake.city(), fake.state_abbr(), fake.postcode()) for _ in range(1_500)]
    by_system: dict[str, list[dict]] = {code: [] for code in SYSTEMS}
    originals: list[dict] = []
    for n in range(count):
        system = SYSTEMS[n % len(SYSTEMS)]
        key = f"{system.upper()}-{n:07d}"
        source = rng.choice(originals) if originals and rng.random() < 0.125 else None
        if source is not None and source["_system"] == system:
            source = None
        if source is None:
            name = rng.choice(names)
            city, region, postal_code = rng.choice(places)
            domain = "".join(c for c in name.split()[0].lower() if c.isalnum())
            row = {
                "kind": "organization",
                "name": name,
                "tax_id": f"US{rng.randrange(10**8, 10**9)}",
                "email": f"info@{domain}{n}.example",
                "phone": f"+1 {rng.randint(201, 989)}-{rng.randint(200, 999)}-"
                f"{rng.randint(0, 9999):04d}",
                "address_line1": rng.choice(streets),
                "city": city,
                "region": region,
                "postal_code": postal_code,
                "country": "US",
            }
        else:
            row = {k: v for k, v in source.items() if not k.startswith("_") and k != "source_key"}
            row["name"] = _variant(rng, row["name"])
            if rng.random() < 0.3:
                row["email"] = f"contact{n}@{row['email'].split('@', 1)[1]}"
            if rng.random() < 0.2:
                row.pop("phone", None)
        row["source_key"] = key
        month, day = rng.randint(1, 10), rng.randint(1, 28)
        row["source_updated_at"] = f"2026-{month:02d}-{day:02d}T00:00:00Z"
        stored = {**row, "_system": system}
        if source is not None:
            stored["_dup_of"] = (source["_system"], source["source_key"])
        else:
            originals.append(stored)
        by_system[system].append(stored)
    return by_system


def _variant(rng: random.Random, name: str) -> str:
    choice = rng.random()
    if choice < 0.3:
        return name.upper()
    if choice < 0.6:
        return name.replace(" and ", " & ").replace(",", "").replace("Inc", "Incorporated")
    position = rng.randrange(1, max(2, len(name) - 1))
    return name[:position] + name[position + 1 :]


def ingest(entity_type: str, system: str, rows: list[dict]) -> None:
    from mdm.services.ingest import ingest_records

    clean = ({k: v for k, v in row.items() if not k.startswith("_")} for row in rows)
    ingest_records(
        entity_type=entity_type,
        system_code=system,
        rows=((i, row) for i, row in enumerate(clean, start=1)),
        actor="bench",
        create_system=True,
        chunk_size=CHUNK,
    )


def record_ids() -> dict[tuple[str, str], tuple[int, str]]:
    """(system, source key) -> (source record id, golden id) for every customer record."""
    from mdm.models import SourceRecord

    rows = SourceRecord.objects.filter(entity_type="customer").values_list(
        "source_system__code", "source_key", "pk", "golden_id"
    )
    return {(system, key): (pk, golden) for system, key, pk, golden in rows}


def load(args) -> dict:
    from django.db import connection

    from mdm.services.resolution import merge_many

    started = time.monotonic()
    by_system = company_rows(args.customers)
    say(f"generated {args.customers:,} customer rows in {time.monotonic() - started:.1f} s")
    for system, rows in by_system.items():
        t0 = time.monotonic()
        ingest("customer", system, rows)
        say(f"ingested {len(rows):,} {system} customers in {time.monotonic() - t0:.1f} s")

    rng = random.Random(SEED + 1)
    # The showcase customer: one company known to all four systems many times over.
    showcase = []
    for n in range(SHOWCASE_MEMBERS):
        system = SYSTEMS[n % len(SYSTEMS)]
        showcase.append(
            {
                "_system": system,
                "source_key": f"SHOW-{n:03d}",
                "kind": "organization",
                "name": "Globex Showcase Corporation" if n else "Globex Showcase Corp",
                "email": f"site{n}@globex-showcase.example",
                "city": rng.choice(["Springfield", "Shelbyville"]),
                "country": "US",
                "source_updated_at": f"2026-09-{1 + n % 28:02d}T00:00:00Z",
            }
        )
    for system in SYSTEMS:
        ingest("customer", system, [r for r in showcase if r["_system"] == system])
    ids = record_ids()
    survivor = ids[("crm", "SHOW-000")][1]
    merges = [(survivor, ids[(r["_system"], r["source_key"])][1], 0.97) for r in showcase[1:]]
    t0 = time.monotonic()
    merge_many(merges=merges, actor="bench", reason="bench: showcase")
    ingest(
        "contract",
        "crm",
        [
            {
                "source_key": f"SHOW-C{n:04d}",
                "contract_number": f"SC-{n:05d}",
                "start_date": "2025-01-01",
                "customer_key": "SHOW-000",
            }
            for n in range(SHOWCASE_CONTRACTS)
        ],
    )
    ingest(
        "entitlement",
        "crm",
        [
            {
                "source_key": f"SHOW-E{n:04d}",
                "quantity": n % 7 + 1,
                "start_date": "2025-01-01",
                "customer_key": "SHOW-000",
            }
            for n in range(SHOWCASE_ENTITLEMENTS)
        ],
    )
    ingest(
        "customer",
        "crm",
        [
            {
                "source_key": f"SHOW-CHILD-{n:03d}",
                "kind": "organization",
                "name": f"Globex Showcase Subsidiary {n}",
                "country": "US",
                "parent_key": "SHOW-000",
            }
            for n in range(SHOWCASE_CHILDREN)
        ],
    )
    say(
        f"showcase golden {survivor}: {SHOWCASE_MEMBERS} members, {SHOWCASE_CONTRACTS} "
        f"contracts, {SHOWCASE_ENTITLEMENTS} entitlements, {SHOWCASE_CHILDREN} children "
        f"({time.monotonic() - t0:.1f} s)"
    )

    # Stakes elsewhere: contracts on random customers (in the customer's own system).
    t0 = time.monotonic()
    customers = [r for rows in by_system.values() for r in rows]
    contracts: dict[str, list[dict]] = {code: [] for code in SYSTEMS}
    for n in range(STAKE_CONTRACTS):
        owner = rng.choice(customers)
        contracts[owner["_system"]].append(
            {
                "source_key": f"CTR-{n:06d}",
                "contract_number": f"C-{n:06d}",
                "start_date": "2025-06-01",
                "customer_key": owner["source_key"],
            }
        )
    for system, rows in contracts.items():
        ingest("contract", system, rows)
    say(f"{STAKE_CONTRACTS:,} contracts in {time.monotonic() - t0:.1f} s")

    # Duplicate pairs: the first AUTO_LINKS are auto-linked, the rest feed the queue.
    duplicates = [
        (ids[r["_dup_of"]], ids[(r["_system"], r["source_key"])])
        for r in customers
        if "_dup_of" in r
    ]
    rng.shuffle(duplicates)
    t0 = time.monotonic()
    linked = duplicates[:AUTO_LINKS]
    seen: set[str] = set()
    auto = []
    for (_, golden_a), (_, golden_b) in linked:
        if golden_a in seen or golden_b in seen:
            continue
        seen |= {golden_a, golden_b}
        auto.append((golden_a, golden_b, round(rng.uniform(0.96, 0.999), 3)))
    merge_many(merges=auto, actor="bench", reason="bench: auto-link", method="auto")
    say(f"auto-linked {len(auto):,} duplicate pairs in {time.monotonic() - t0:.1f} s")

    t0 = time.monotonic()
    make_candidates(args.candidates, duplicates[AUTO_LINKS:], customers, ids, rng)
    make_runs()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"{args.candidates:,} candidates and match runs in {time.monotonic() - t0:.1f} s")
    say(f"load done in {time.monotonic() - started:.0f} s")
    return {"showcase": survivor}


EXPLAINED = ("name", "email", "phone", "city", "postal_code", "tax_id")


def make_candidates(count, duplicates, customers, ids, rng) -> None:
    """Open candidates: 85 % duplicate pairs (high probabilities), the rest strangers in the
    same city (probabilities near 0.5), each with a matcher-shaped explanation."""
    import math
    from datetime import timedelta

    from django.utils import timezone

    from matching.models import MatchCandidate
    from mdm.models import SourceRecord

    by_city: dict[str, list[dict]] = {}
    for row in customers:
        by_city.setdefault(row.get("city", ""), []).append(row)
    pairs: set[tuple[int, int]] = set()
    planned: list[tuple[int, int, float]] = []
    for (left, _), (right, _) in duplicates:
        if len(planned) >= count * 0.85:
            break
        pair = (min(left, right), max(left, right))
        if pair not in pairs:
            pairs.add(pair)
            planned.append((*pair, round(0.5 + 0.45 * rng.betavariate(3, 1.5), 4)))
    cities = [rows for rows in by_city.values() if len(rows) > 1]
    while len(planned) < count:
        first, second = rng.sample(rng.choice(cities), 2)
        left = ids[(first["_system"], first["source_key"])][0]
        right = ids[(second["_system"], second["source_key"])][0]
        pair = (min(left, right), max(left, right))
        if pair not in pairs:
            pairs.add(pair)
            planned.append((*pair, round(rng.uniform(0.5, 0.62), 4)))
    stored = {
        pk: (attrs, golden)
        for pk, attrs, golden in SourceRecord.objects.filter(
            pk__in={i for p in planned for i in p[:2]}
        ).values_list("pk", "attributes", "golden_id")
    }
    attributes = {pk: attrs for pk, (attrs, _) in stored.items()}
    golden_of = {pk: golden for pk, (_, golden) in stored.items()}
    now = timezone.now()
    candidates = []
    golden_pairs: set[tuple[str, str]] = set()  # one open candidate per pair of golden records
    for left, right, probability in planned:
        if golden_of[left] > golden_of[right]:
            left, right = right, left
        golden_pair = (golden_of[left], golden_of[right])
        if golden_pair[0] == golden_pair[1] or golden_pair in golden_pairs:
            continue
        golden_pairs.add(golden_pair)
        a, b = attributes[left], attributes[right]
        explanation = {}
        for name in EXPLAINED:
            if a.get(name) is None or b.get(name) is None:
                level, weight = "null", 0.0
            elif a[name] == b[name]:
                level, weight = "exact match", round(rng.uniform(3, 9), 2)
            else:
                level, weight = "all other comparisons", round(rng.uniform(-6, -1), 2)
            explanation[name] = {
                "level": level,
                "left": a.get(name),
                "right": b.get(name),
                "match_weight": weight,
            }
        candidate = MatchCandidate(
            entity_type="customer",
            left_golden_id=golden_pair[0],
            right_golden_id=golden_pair[1],
            left_id=left,
            right_id=right,
            probability=probability,
            match_weight=round(math.log2(probability / (1 - probability)), 3),
            explanation=explanation,
        )
        candidates.append(candidate)
    created = MatchCandidate.objects.bulk_create(candidates, batch_size=2000)
    for candidate in created:
        candidate.created_at = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
    MatchCandidate.objects.bulk_update(created, ["created_at"], batch_size=2000)


def make_runs() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from matching.models import MatchRun

    now = timezone.now()
    for n in range(6):
        run = MatchRun.objects.create(
            entity_type="customer",
            status="succeeded",
            actor="bench",
            records=100_000,
            pairs_scored=2_400_000,
            merges=2_000,
            sent_to_review=10_000,
            goldens_before=102_000,
            goldens_after=100_000,
        )
        started = now - timedelta(days=6 - n)
        MatchRun.objects.filter(pk=run.pk).update(
            started_at=started, finished_at=started + timedelta(minutes=4)
        )


# ------------------------------------------------------------------------------ the pages


def steward_client():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from stewardship.roles import setup_roles

    setup_roles()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-steward", defaults={"is_staff": True}
    )
    user.groups.add(Group.objects.get(name="steward"))
    client = Client()
    client.force_login(user)
    return client


def pages(showcase: str, rng: random.Random) -> list[tuple[str, object]]:
    """(label, url or a function of the request number giving the url)."""
    from matching.models import MatchCandidate
    from mdm.models import GoldenRecord

    candidate_ids = list(MatchCandidate.objects.values_list("pk", flat=True))
    picked = rng.sample(candidate_ids, 50)
    goldens = list(
        GoldenRecord.objects.filter(entity_type="customer", status="active")
        .order_by("?")
        .values_list("pk", flat=True)[:50]
    )
    typical = [g for g in goldens if g != showcase]
    return [
        ("queue (default)", "/steward/queue/"),
        ("queue page 200", "/steward/queue/?page=200"),
        ("queue band=uncertain", "/steward/queue/?band=uncertain"),
        ("queue system=erp", "/steward/queue/?system=erp"),
        ("queue entity+age=month", "/steward/queue/?entity=customer&age=month"),
        ("queue next (redirect)", "/steward/queue/next/"),
        ("candidate page", lambda i: f"/steward/candidates/{picked[i % len(picked)]}/"),
        ("golden (showcase)", f"/steward/golden/{showcase}/"),
        ("golden (typical)", lambda i: f"/steward/golden/{typical[i % len(typical)]}/"),
        ("dashboard", "/steward/"),
        ("golden list (default)", "/steward/golden/"),
        ("golden search q=name", "/steward/golden/?q=llc&entity=customer"),
        ("golden search q=id", lambda i: f"/steward/golden/?q={typical[i % len(typical)][:6]}"),
        ("golden list conflicts", "/steward/golden/?conflicts=1"),
        ("audit (golden)", "/steward/audit/"),
        ("audit (source)", "/steward/audit/?kind=source"),
        ("audit page 100", "/steward/audit/?kind=source&page=100"),
    ]


def measure(client, label, url, requests: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    resolve = url if callable(url) else (lambda i: url)
    response = client.get(resolve(0))  # warm-up, not counted
    if response.status_code not in (200, 302):
        raise SystemExit(f"{label}: HTTP {response.status_code} for {resolve(0)}")
    times, queries, slowest = [], [], {"time": "0", "sql": ""}
    for i in range(requests):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(resolve(i + 1))
            times.append((time.perf_counter() - started) * 1000)
        if response.status_code not in (200, 302):
            raise SystemExit(f"{label}: HTTP {response.status_code}")
        queries.append(len(captured.captured_queries))
        slowest = max([slowest, *captured.captured_queries], key=lambda q: float(q["time"]))
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {
        "label": label,
        "median": statistics.median(times),
        "p95": p95,
        "queries": max(queries),
        "slowest_sql_ms": float(slowest["time"]) * 1000,
        "slowest_sql": slowest["sql"][:160],
    }


def report(results: list[dict], facts: dict) -> None:
    print()
    print(f"Stewardship pages — {facts['when']} — {facts['machine']}")
    print(f"data: {facts['data']}")
    print(f"load average before timing: {facts['uptime_before']}")
    print(f"load average after timing:  {facts['uptime_after']}")
    print()
    print(f"{'page':<26} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'slowest SQL ms':>15}")
    for r in results:
        print(
            f"{r['label']:<26} {r['median']:>10.1f} {r['p95']:>8.1f} {r['queries']:>8} "
            f"{r['slowest_sql_ms']:>15.1f}"
        )
    print()
    for r in results:
        if r["median"] > 300:
            print(f"SLOW {r['label']}: {r['slowest_sql']}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    args = parse_args()
    target = bench_target(args.database_url)
    if not args.pages_only:
        say(f"recreating database {target['name']} on {target['host']}")
        maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
        maintenance(target, "CREATE DATABASE {}")
    try:
        setup_django(args.database_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        say("migrated")
        from matching.models import MatchCandidate
        from mdm.models import GoldenRecord, SourceRecord

        if args.pages_only:
            showcase = SourceRecord.objects.get(source_system__code="crm", source_key="SHOW-000")
            loaded = {"showcase": showcase.golden_id}
            args.candidates = MatchCandidate.objects.filter(status="open").count()
        else:
            loaded = load(args)

        facts = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}",
            "data": f"{GoldenRecord.objects.filter(status='active').count():,} active golden "
            f"records, {SourceRecord.objects.count():,} source records, "
            f"{args.candidates:,} open candidates",
            "uptime_before": load_average(),
        }
        client = steward_client()
        rng = random.Random(SEED + 2)
        results = []
        for label, url in pages(loaded["showcase"], rng):
            results.append(measure(client, label, url, args.requests))
            r = results[-1]
            say(
                f"{label}: median {r['median']:.0f} ms, p95 {r['p95']:.0f} ms, "
                f"{r['queries']} queries"
            )
        facts["uptime_after"] = load_average()
        report(results, facts)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            say(f"kept database {target['name']}")
        else:
            maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
            say(f"dropped database {target['name']}")


if __name__ == "__main__":
    main()
