"""The demo data generator: deterministic files, an exact ground truth, honest noise.

No database: the generator is pure Python and the command only writes files.
"""

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from demo.data import (
    ENTITY_SYSTEMS,
    GROUND_TRUTH_FILE,
    MANIFEST_FILE,
    DemoManifest,
    generate_demo_data,
)
from mdm.entities import ENTITIES

REPOSITORY = Path(__file__).resolve().parents[2]
ENTITY_ORDER = ["customer", "product", "contract", "entitlement"]
KEY_STYLES = {
    "crm": re.compile(r"(001|01t|800)5g00000[0-9A-Za-z]{5}"),
    "erp": re.compile(r"\d{6,7}"),
    "billing": re.compile(r"(cus|prod|sub|si)_[0-9A-Za-z]{14}"),
    "success": re.compile(r"(acc|ent)-[0-9a-f]{8}"),
    "support": re.compile(r"36\d{10}"),
}
MONTHS = "January February March April May June July August September October November December"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def digest(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def parse_date(text: str) -> date | None:
    """The three date formats the generator documents (ISO, 12.03.1985, March 12, 1985)."""
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%B %d, %Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


class DemoSet:
    """One generated directory, read back the way a consumer reads it."""

    def __init__(self, directory: Path, manifest: DemoManifest):
        self.directory = directory
        self.manifest = manifest
        self.files = {(f.system, f.entity): read_csv(directory / f.path) for f in manifest.files}
        self.truth = read_csv(directory / GROUND_TRUTH_FILE)

    def systems_of(self, entity: str) -> dict[str, set[str]]:
        systems = defaultdict(set)
        for row in self.truth:
            if row["entity"] == entity:
                systems[row["true_id"]].add(row["source_system"])
        return systems

    def true_ids(self) -> dict[tuple[str, str, str], str]:
        return {
            (row["entity"], row["source_system"], row["source_key"]): row["true_id"]
            for row in self.truth
        }


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoSet:
    directory = tmp_path_factory.mktemp("demo")
    return DemoSet(directory, generate_demo_data(output_dir=directory, seed=7, customers=1000))


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> DemoSet:
    directory = tmp_path_factory.mktemp("small")
    return DemoSet(directory, generate_demo_data(output_dir=directory, seed=3, customers=50))


@pytest.fixture(params=["demo", "small_demo"])
def any_demo(request) -> DemoSet:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_and_size_write_identical_bytes(tmp_path):
    generate_demo_data(output_dir=tmp_path / "a", seed=11, customers=200)
    generate_demo_data(output_dir=tmp_path / "b", seed=11, customers=200)

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_output_does_not_depend_on_the_interpreters_hash_seed(tmp_path):
    generate_demo_data(output_dir=tmp_path / "here", seed=5, customers=120)
    script = (
        "import sys; from pathlib import Path; from demo.data import generate_demo_data; "
        "generate_demo_data(output_dir=Path(sys.argv[1]), seed=5, customers=120)"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "there")],
        cwd=REPOSITORY,
        env=environment,
        check=True,
    )

    assert digest(tmp_path / "here") == digest(tmp_path / "there")


def test_a_different_seed_writes_different_data(tmp_path):
    generate_demo_data(output_dir=tmp_path / "a", seed=1, customers=200)
    generate_demo_data(output_dir=tmp_path / "b", seed=2, customers=200)

    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first.keys() == second.keys()
    assert first["crm__customer.csv"] != second["crm__customer.csv"]
    assert first[GROUND_TRUTH_FILE] != second[GROUND_TRUTH_FILE]


# ------------------------------------------------------------------------- files and manifest


def test_manifest_json_lists_every_file_with_its_row_count_referenced_entities_first(any_demo):
    document = json.loads((any_demo.directory / MANIFEST_FILE).read_text("utf-8"))

    assert DemoManifest.from_json(document) == any_demo.manifest
    assert document["ground_truth"] == GROUND_TRUTH_FILE
    entities = [entry["entity"] for entry in document["files"]]
    assert entities == sorted(entities, key=ENTITY_ORDER.index)
    expected = {(s, e) for e, systems in ENTITY_SYSTEMS.items() for s in systems}
    assert {(entry["system"], entry["entity"]) for entry in document["files"]} == expected
    for entry in document["files"]:
        assert entry["path"] == f"{entry['system']}__{entry['entity']}.csv"
        assert len(read_csv(any_demo.directory / entry["path"])) == entry["rows"]


def test_each_file_has_source_key_declared_columns_and_an_iso_timestamp(any_demo):
    for (system, entity), rows in any_demo.files.items():
        path = any_demo.directory / f"{system}__{entity}.csv"
        header = next(csv.reader(path.open(encoding="utf-8", newline="")))
        declared = ENTITIES[entity].survived_fields
        assert header[0] == "source_key" and header[-1] == "source_updated_at"
        assert set(header[1:-1]) <= set(declared), (system, entity)
        assert header[1:-1] == [name for name in declared if name in header], (system, entity)
        for row in rows:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["source_updated_at"])
            assert row["source_updated_at"] < "2026-01-01"


def test_systems_carry_different_columns(demo):
    crm, billing = demo.files[("crm", "customer")][0], demo.files[("billing", "customer")][0]
    erp, support = demo.files[("erp", "customer")][0], demo.files[("support", "customer")][0]

    assert "website" in crm and "website" not in billing
    assert "tax_id" in erp and "address_line1" in erp
    assert "email" in support and "region" not in support
    assert "contract_key" not in demo.files[("success", "entitlement")][0]


def test_source_keys_are_unique_per_file_and_in_each_systems_style(any_demo):
    for (system, entity), rows in any_demo.files.items():
        keys = [row["source_key"] for row in rows if row["source_key"]]
        assert len(keys) == len(set(keys)), (system, entity)
        for key in keys:
            assert KEY_STYLES[system].fullmatch(key), (system, entity, key)


# ------------------------------------------------------------------------------ ground truth


def test_every_ground_truth_row_names_a_written_row_and_every_keyed_row_has_one(any_demo):
    written = {
        (entity, system, row["source_key"])
        for (system, entity), rows in any_demo.files.items()
        for row in rows
        if row["source_key"]
    }
    named = [(row["entity"], row["source_system"], row["source_key"]) for row in any_demo.truth]

    assert len(named) == len(set(named))
    assert set(named) == written
    assert all(re.fullmatch(r"(customer|product|contract|entitlement)-\d{5,}", row["true_id"])
               for row in any_demo.truth)  # fmt: skip
    for row in any_demo.truth:
        assert row["true_id"].startswith(row["entity"] + "-")


def test_customers_come_from_all_five_systems(any_demo):
    customer_files = [key for key in any_demo.files if key[1] == "customer"]

    assert len([key for key in customer_files if any_demo.files[key]]) >= 4
    assert len(customer_files) == 5


def test_the_same_customer_appears_in_three_or_more_systems(any_demo):
    spread = Counter(len(systems) for systems in any_demo.systems_of("customer").values())

    assert sum(count for width, count in spread.items() if width >= 3) > 0
    assert spread[1] > 0  # some customers live in one system only


def test_default_size_spreads_customers_over_one_to_five_systems_mostly_two_or_three(demo):
    spread = Counter(len(systems) for systems in demo.systems_of("customer").values())

    assert sum(spread.values()) == 1000
    assert set(spread) == {1, 2, 3, 4, 5}
    assert spread[2] + spread[3] > sum(spread.values()) / 2


def test_some_customers_are_entered_twice_in_the_same_system(any_demo):
    copies = Counter(
        (row["source_system"], row["true_id"]) for row in any_demo.truth
        if row["entity"] == "customer"
    )  # fmt: skip

    duplicated = [key for key, count in copies.items() if count > 1]
    assert duplicated
    assert {system for system, _ in duplicated} & {"crm", "support"}


def test_every_reference_points_at_a_record_of_the_target_entity_in_the_same_system(any_demo):
    keys = {
        (system, entity): {row["source_key"] for row in rows}
        for (system, entity), rows in any_demo.files.items()
    }
    checked = 0
    for (system, entity), rows in any_demo.files.items():
        for reference in ENTITIES[entity].references:
            for row in rows:
                value = row.get(reference.column, "")
                if value:
                    assert value in keys.get((system, reference.target), set()), (
                        system,
                        entity,
                        reference.column,
                        value,
                    )
                    checked += 1
    assert checked > 0


def test_references_point_at_the_right_real_world_thing(demo):
    true_id = demo.true_ids()
    for (system, entity), rows in demo.files.items():
        if entity != "entitlement":
            continue
        for row in rows:
            if not row["source_key"] or not row.get("contract_key"):
                continue
            contract = true_id[("contract", system, row["contract_key"])]
            contract_row = next(
                r
                for r in demo.files[(system, "contract")]
                if r["source_key"] == row["contract_key"]
            )
            owner = true_id[("customer", system, contract_row["customer_key"])]
            assert true_id[("customer", system, row["customer_key"])] == owner, contract


def test_account_hierarchies_link_subsidiaries_to_their_parent(demo):
    parents = [
        row["parent_key"]
        for system in ("crm", "erp", "success")
        for row in demo.files[(system, "customer")]
        if row.get("parent_key")
    ]

    assert parents
    assert len(set(parents)) < len(parents)  # a parent has several subsidiaries


# ------------------------------------------------------------------------------- broken rows


def test_broken_rows_exist_and_keyless_rows_stay_out_of_the_ground_truth(any_demo):
    keyless = [
        (system, entity)
        for (system, entity), rows in any_demo.files.items()
        for row in rows
        if not row["source_key"]
    ]
    unparseable = [
        (system, entity, column, row[column])
        for (system, entity), rows in any_demo.files.items()
        for row in rows
        for column in ("date_of_birth", "start_date", "end_date")
        if row.get(column) and parse_date(row[column]) is None
    ]

    assert 1 <= len(keyless) <= 2
    assert all(row["source_key"] for row in any_demo.truth)
    assert 2 <= len(unparseable) <= 3, unparseable
    assert any(value in ("31/02/2020", "not-a-date") for *_, value in unparseable)


def test_every_other_date_uses_one_of_three_documented_formats(demo):
    formats = Counter()
    for rows in demo.files.values():
        for row in rows:
            for column in ("date_of_birth", "start_date", "end_date"):
                value = row.get(column)
                if value and parse_date(value):
                    if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
                        formats["iso"] += 1
                    elif "." in value:
                        formats["dotted"] += 1
                    elif value.split()[0] in MONTHS.split():
                        formats["long"] += 1
    assert set(formats) == {"iso", "dotted", "long"}


# ------------------------------------------------------------------------- realistic noise


def test_copies_of_one_organization_disagree_in_spelling(demo):
    names = defaultdict(set)
    true_id = demo.true_ids()
    for (system, entity), rows in demo.files.items():
        if entity == "customer":
            for row in rows:
                if row["source_key"] and row["kind"] in ("organization", "company"):
                    names[true_id[("customer", system, row["source_key"])]].add(row["name"])
    spread = [len(variants) for variants in names.values()]

    assert sum(1 for width in spread if width > 1) > len(spread) / 4


def test_phones_and_countries_are_written_in_several_formats(demo):
    phones = [row["phone"] for rows in demo.files.values() for row in rows if row.get("phone")]
    countries = {
        row["country"] for rows in demo.files.values() for row in rows if row.get("country")
    }

    assert any(phone.startswith("+") for phone in phones)
    assert any(phone.startswith("(") for phone in phones)
    assert any(re.fullmatch(r"0[\d ]+", phone) for phone in phones)
    assert {"US", "USA", "United States", "DE", "Germany"} <= countries


def test_hard_negatives_exist(demo):
    true_id = demo.true_ids()
    by_domain = defaultdict(set)
    by_person_name = defaultdict(set)
    by_address = defaultdict(set)
    for (system, entity), rows in demo.files.items():
        if entity != "customer":
            continue
        for row in rows:
            if not row["source_key"]:
                continue
            thing = true_id[("customer", system, row["source_key"])]
            website = row.get("website", "")
            if website:
                domain = re.sub(r"^(https?://)?(www\.)?", "", website).rstrip("/")
                by_domain[domain].add(thing)
            if row.get("given_name") and row.get("family_name"):
                by_person_name[(row["given_name"], row["family_name"])].add(thing)
            if row["kind"] in ("person", "individual") and row.get("address_line1"):
                by_address[(row["address_line1"], row.get("postal_code"))].add(thing)

    assert any(len(things) > 1 for things in by_domain.values())  # sibling companies
    assert any(len(things) > 1 for things in by_person_name.values())  # namesakes
    assert any(len(things) > 1 for things in by_address.values())  # family members


def test_products_carry_valid_gtins_and_recoverable_skus(demo):
    gtins = [row["gtin"] for row in demo.files[("erp", "product")] if row.get("gtin")]
    assert gtins
    for gtin in gtins:
        digits = [int(d) for d in gtin]
        total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
        assert (10 - total % 10) % 10 == digits[-1], gtin

    true_id = demo.true_ids()
    skus = defaultdict(set)
    for system in ("erp", "crm", "billing"):
        for row in demo.files[(system, "product")]:
            if row["source_key"] and row["sku"]:
                thing = true_id[("product", system, row["source_key"])]
                skus[thing].add(re.sub(r"[^0-9A-Za-z]", "", row["sku"]).upper())
    assert all(len(variants) == 1 for variants in skus.values())


def test_sizes_scale_with_the_number_of_customers(demo, small_demo):
    assert 3_000 < demo.manifest.total_rows < 12_000
    assert small_demo.manifest.total_rows < demo.manifest.total_rows / 5
    assert len(demo.systems_of("product")) == 50
    assert len(small_demo.systems_of("product")) == 30


def test_fewer_than_one_customer_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_demo_data(output_dir=tmp_path, customers=0)


# ---------------------------------------------------------------------------------- command


def test_command_writes_the_files_and_prints_counts_and_the_ground_truth_path(tmp_path):
    out = io.StringIO()
    call_command("generate_demo_data", output=tmp_path, seed=9, customers=50, stdout=out)

    printed = out.getvalue().splitlines()
    manifest = DemoManifest.load(tmp_path)
    assert len(printed) == len(manifest.files) + 2
    assert printed[0].startswith("crm__customer.csv") and printed[0].endswith(" rows")
    assert printed[-2].split()[:2] == ["total", str(manifest.total_rows)]
    assert printed[-1] == f"ground truth: {tmp_path / GROUND_TRUTH_FILE}"
