"""Worker memory soak: many incremental match calls in one process, RSS printed as it goes.

    python bench/soak.py [--existing 5000] [--calls 20000] [--every 1000] [--pool 200]
        [--database-url postgres://postgres@127.0.0.1:5432/keystone_soak_bench] [--keep]
        [--reuse] [--timeout 3600] [--trace]

1. (not timed) drop and create the bench database (127.0.0.1/localhost only, a name with
   "bench"), migrate, COPY `existing` synthetic customers (`bench/match_scale.py`'s generator),
   one batch run with training, then ingest `pool` changed records (half near-duplicates, half
   new) with matching on ingest disconnected.
2. `calls` calls of `matching.services.match_records` for one changed record each, cycling
   over the pool, in this one process — what a worker does all day. Every `every` calls: the
   resident set size (VmRSS), its change since the previous line and per call since the end
   of the warm-up (the first `warmup` calls: caches fill, the scoring statement is prepared
   and its tables are first recreated). With --trace, the Python allocations that grew most
   after the warm-up (tracemalloc; much slower).

A memory figure, not a speed figure: the size only needs to be big enough to warm up.
Stops by itself (an alarm after --timeout seconds); the database is dropped unless --keep.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import match_incremental  # noqa: E402  (changed rows, ingest without matching)
import match_scale  # noqa: E402  (generator, COPY loader, database helpers)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_soak_bench"


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def prepare(existing: int) -> None:
    from django.core.management import call_command

    from matching.services import run_batch_matching

    call_command("migrate", interactive=False, verbosity=0)
    match_scale.copy_load(match_scale.synthetic_rows(existing))
    run_batch_matching(entity_type="customer", actor="bench", retrain=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, default=5_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=1_000, help="calls before growth counts")
    parser.add_argument("--pool", type=int, default=200, help="changed records to cycle over")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept, prepared database")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: what grew most")
    args = parser.parse_args(argv)
    target = match_incremental.bench_target(args.database_url)

    def expire(*_):
        raise TimeoutError(f"soak timed out after {args.timeout:.0f}s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(args.timeout))
    print(f"machine: {os.cpu_count()} cores; pid {os.getpid()}", flush=True)
    if not args.reuse:
        match_scale.recreate_database(target)
    match_scale.setup_django(args.database_url)
    try:
        from matching import services

        if not (args.reuse and match_incremental.has_model()):
            prepare(args.existing)
        tag = str(int(time.time()))
        ids = match_incremental.ingest_unmatched(
            match_incremental.changed_rows(args.existing, args.pool, tag)
        )
        print(f"existing {args.existing:,}, pool {len(ids)}, calls {args.calls:,}", flush=True)
        if args.trace:
            import tracemalloc

            tracemalloc.start(12)
        gc.collect()
        start_rss = previous = rss_kib()
        warm_rss = 0
        started = time.monotonic()
        print(f"calls      0: rss {start_rss / 1024:8.1f} MiB", flush=True)
        for call in range(1, args.calls + 1):
            services.match_records(
                entity_type="customer", record_ids=[ids[call % len(ids)]], actor="bench"
            )
            if call == args.warmup:
                warm_rss = rss_kib()
                if args.trace:
                    baseline = tracemalloc.take_snapshot()
            if call % args.every == 0:
                rss = rss_kib()
                after = call - args.warmup
                per_call = (rss - warm_rss) / after if warm_rss and after > 0 else 0.0
                print(
                    f"calls {call:6d}: rss {rss / 1024:8.1f} MiB ({(rss - previous):+7d} KiB); "
                    f"since warm-up {per_call:+.3f} KiB/call; "
                    f"{(time.monotonic() - started) * 1000 / call:.1f} ms/call",
                    flush=True,
                )
                previous = rss
        if args.trace:
            grown = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
            print("allocations that grew most since warm-up:")
            for stat in grown[:10]:
                print(f"  {stat.size_diff / 1024:+9.1f} KiB in {stat.count_diff:+d} blocks")
                for line in stat.traceback.format()[-6:]:
                    print(f"      {line}")
        end = rss_kib()
        print(
            f"rss: start {start_rss / 1024:.1f} MiB, after warm-up {(warm_rss or end) / 1024:.1f} "
            f"MiB, end {end / 1024:.1f} MiB over {args.calls:,} calls "
            f"({(end - (warm_rss or end)) / max(args.calls - args.warmup, 1):+.3f} KiB/call)",
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
