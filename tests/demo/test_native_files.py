"""The demo's native-shaped files: every row, loaded through its system's shipped mapping,
gives ingest exactly the record the canonical CSV row gives (so the demo's golden records are
the same), and the shipped mappings are valid."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from demo.data import ENTITY_SYSTEMS, DemoManifest, generate_demo_data
from demo.native import MAPPINGS_DIR, mapping_spec
from mdm.entities import get_entity
from mdm.mappings import compile_mapping
from mdm.models import SourceSystem
from mdm.services.ingest import RecordRejected, prepare_record


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory) -> tuple[Path, DemoManifest]:
    directory = tmp_path_factory.mktemp("native")
    return directory, generate_demo_data(output_dir=directory, seed=3, customers=300)


def prepared(entity, system, row, mapping):
    try:
        record = prepare_record(entity, system, row, mapping=mapping)
    except RecordRejected as rejected:
        return ("rejected", rejected.code if mapping is None else "")
    return (record.source_key, record.values, record.keys, record.invalid, record.references,
            record.source_updated_at, record.deleted)  # fmt: skip


def test_every_system_and_entity_has_a_valid_shipped_mapping():
    shipped = {path.name for path in MAPPINGS_DIR.glob("*.yaml")}

    assert shipped == {
        f"{system}__{entity}.yaml"
        for entity, systems in ENTITY_SYSTEMS.items()
        for system in systems
    }
    for entity, systems in ENTITY_SYSTEMS.items():
        for system in systems:
            compile_mapping(mapping_spec(system, entity), entity_type=entity, system=system)


def test_native_rows_through_their_mapping_are_the_canonical_rows(demo_set):
    directory, manifest = demo_set
    compared = 0
    for demo_file in manifest.files:
        entity = get_entity(demo_file.entity)
        system = SourceSystem(code=demo_file.system)
        mapping = compile_mapping(
            mapping_spec(demo_file.system, demo_file.entity), entity_type=entity.name
        )
        with (directory / demo_file.path).open(encoding="utf-8", newline="") as handle:
            canonical = list(csv.DictReader(handle))
        native = [
            json.loads(line)
            for line in (directory / demo_file.native).read_text(encoding="utf-8").splitlines()
        ]

        assert len(native) == len(canonical) == demo_file.rows
        for row, payload in zip(canonical, native, strict=True):
            expected = prepared(entity, system, row, None)
            got = prepared(entity, system, payload, mapping)
            if expected[0] == "rejected":
                assert got[0] == "rejected", (demo_file.native, payload)
            else:
                assert got == expected, (demo_file.native, payload)
            compared += 1
    assert compared == manifest.total_rows


def test_native_files_use_native_shapes(demo_set):
    directory, _ = demo_set

    crm = json.loads((directory / "crm__customer.ndjson").read_text().splitlines()[0])
    erp = [
        json.loads(line) for line in (directory / "erp__customer.ndjson").read_text().splitlines()
    ]
    stripe = json.loads((directory / "billing__customer.ndjson").read_text().splitlines()[0])

    assert crm["attributes"]["type"] == "Account"
    assert crm["RecordType"]["Name"] in {"Business Account", "Person Account"}
    assert "BillingAddress" in crm or "Id" in crm
    assert any(
        record.get("addressbookList", {}).get("addressbook", [{}])[0]
        .get("addressbookAddress", {}).get("country", "").startswith("_")
        for record in erp
    )  # fmt: skip
    assert stripe["object"] == "customer"
    assert isinstance(stripe["metadata"]["updated"], int)
