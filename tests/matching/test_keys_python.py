"""Blocking keys computed in Python (the incremental fast path) equal DuckDB's, row for row."""

import pytest

from matching import keys
from matching.engine import local_connection
from matching.frame import frame_from_rows
from matching.specs import SPECS, get_spec
from mdm.entities import get_entity
from mdm.normalize import normalize_record


def _as_set(table) -> set[tuple]:
    return set(zip(*(table[c].to_pylist() for c in ("record_id", "name", "value")), strict=True))


def _both(spec, frame):
    python = keys.python_key_rows(spec, frame)
    duck = keys.key_rows(spec, frame, con=local_connection())  # an explicit connection: DuckDB
    assert python is not None
    assert python.schema.equals(keys.KEY_SCHEMA)
    return _as_set(python), _as_set(duck)


def test_python_keys_equal_duckdb_on_the_febrl_sample(febrl_sample):
    spec, entity = get_spec("customer"), get_entity("customer")
    rows = []
    for number, row in enumerate([*febrl_sample["crm"], *febrl_sample["erp"]], start=1):
        normalized = normalize_record(entity, row)
        rows.append((number, normalized.keys, normalized.values))
    frame = frame_from_rows(spec, rows)

    python, duck = _both(spec, frame)

    assert len(duck) > 1000
    assert python == duck


def test_python_keys_equal_duckdb_on_edge_cases():
    spec = get_spec("customer")
    long_name = "zyx " * 80
    rows = [
        (1, {"name_key": "coppertech mfg", "country": "US"}, {"kind": "organization"}),
        (2, {"name_key": "christopher adams", "country": "US"}, {"kind": "person"}),
        (3, {"name_key": "müller  ändré çafé", "postal_code_key": "8001"}, {}),
        (4, {"name_key": long_name, "city_key": "x", "email_domain": "a.com"}, {}),
        (5, {"name_key": "ab", "postal_code_key": "1", "family_name_key": "é"}, {}),
        (6, {"name_key": "b a Z", "given_name_key": "日本語テキスト"}, {"kind": "organization"}),
        (7, {}, {}),
    ]
    frame = frame_from_rows(spec, rows)

    python, duck = _both(spec, frame)

    assert python == duck
    assert any(value.startswith("#") for _, _, value in python)


def test_specs_with_untranslated_expressions_fall_back_to_duckdb():
    spec = SPECS["product"]  # lower("name"): left to DuckDB
    frame = frame_from_rows(spec, [(1, {"sku_key": "abc1", "name": "Ä Widget"}, {})])

    assert keys.python_key_rows(spec, frame) is None
    assert {r["name"] for r in keys.key_rows(spec, frame).to_pylist()} >= {"sku_key"}


@pytest.mark.parametrize("entity_type", sorted(SPECS))
def test_key_rows_has_one_schema_whichever_path(entity_type):
    spec = SPECS[entity_type]
    frame = frame_from_rows(spec, [(1, {}, {})])
    assert keys.key_rows(spec, frame).schema.names == ["record_id", "name", "value"]
