"""The blocking-key index finds exactly the pairs the batch run's blocking rules generate,
expression rules included (organization-only name prefixes, sorted name words, `translate`)."""

import pytest

from matching import keys
from matching.engine import linker_for
from matching.frame import frame_from_rows
from matching.specs import SPECS, get_spec, settings_for
from mdm.models import SourceRecord
from tests.factories import SourceSystemFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = [
    # Shares only the organization name prefix: `if(kind = 'organization', …)`.
    (1, {"name_key": "coppertech manufacturing", "country": "US"}, {"kind": "organization"}),
    (2, {"name_key": "coppertech mfg", "country": "US"}, {"kind": "organization"}),
    # The same prefix between two people is no key.
    (3, {"name_key": "christopher adams", "country": "US"}, {"kind": "person"}),
    (4, {"name_key": "christopher baker", "country": "US"}, {"kind": "person"}),
    # The same words in another order: sorted name words.
    (5, {"name_key": "davis rebecca"}, {"kind": "person"}),
    (6, {"name_key": "rebecca davis"}, {"kind": "person"}),
    # People at one free mailbox domain with the same first letters: no key (thousands share
    # gmail.com and "mari" in a million customers).
    (7, {"name_key": "maria lopez", "email_domain": "gmail.com"}, {"kind": "person"}),
    (8, {"name_key": "maria smith", "email_domain": "gmail.com"}, {"kind": "person"}),
    # Another mailbox at the company's domain in its city, the name misspelt.
    (
        9,
        {"name_key": "riivertech trading", "email_domain": "rivertech.nl", "city_key": "sleen"},
        {"kind": "organization"},
    ),
    (
        10,
        {"name_key": "rivertech trading", "email_domain": "rivertech.nl", "city_key": "sleen"},
        {"kind": "organization"},
    ),
    # A sparse export says nothing of kind: its rows are organizations for the name prefix
    # too (the second writes its branch after the name).
    (11, {"name_key": "harbor duck bistro"}, {}),
    (12, {"name_key": "harbor duck bistro atlanta"}, {}),
]
CONTRACTS = [
    # Another prefix and zero padding: `translate(contract_number_key, …)`.
    (1, {"contract_number_key": "C202400411"}, {}),
    (2, {"contract_number_key": "K2024411"}, {}),
    (3, {"contract_number_key": "C202400412"}, {}),
]


def _batch_pairs(spec, frame) -> set[tuple[int, int]]:
    with linker_for(frame, settings_for(spec)) as linker:
        pairs = linker.inference.deterministic_link().as_pandas_dataframe()
    return {
        (min(left, right), max(left, right))
        for left, right in zip(pairs["unique_id_l"], pairs["unique_id_r"], strict=True)
    }


def _stored(entity_type: str, rows) -> list[tuple[int, dict, dict]]:
    """`rows` as stored source records (the index refers to them); the labels become keys."""
    system = SourceSystemFactory()
    stored = {
        label: SourceRecord.objects.create(
            entity_type=entity_type,
            source_system=system,
            source_key=str(label),
            match_keys=match_keys,
            attributes=attributes,
            payload_hash=str(label),
        ).pk
        for label, match_keys, attributes in rows
    }
    return [(stored[label], match_keys, attributes) for label, match_keys, attributes in rows]


def _labels(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    label = dict(SourceRecord.objects.values_list("pk", "source_key"))
    return {(int(label[a]), int(label[b])) for a, b in pairs}


def _index_pairs(spec, frame) -> set[tuple[int, int]]:
    keys.rebuild_index(spec, frame)
    found = keys.candidates(spec.entity_type, keys.key_rows(spec, frame))
    return {(min(a, b), max(a, b)) for a, others in found.items() for b in others}


@pytest.mark.parametrize(
    ("entity_type", "rows", "expected"),
    [
        ("customer", CUSTOMERS, {(1, 2), (5, 6), (9, 10), (11, 12)}),
        ("contract", CONTRACTS, {(1, 2)}),
    ],
)
def test_index_candidates_are_the_batch_blocking_pairs(entity_type, rows, expected):
    spec = get_spec(entity_type)
    frame = frame_from_rows(spec, _stored(entity_type, rows))

    assert _labels(_index_pairs(spec, frame)) == _labels(_batch_pairs(spec, frame)) == expected


def test_expression_keys_are_evaluated_as_splink_evaluates_them():
    spec = get_spec("customer")
    frame = frame_from_rows(spec, CUSTOMERS[:2] + CUSTOMERS[4:5])

    values = {
        (r["record_id"], r["name"]): r["value"] for r in keys.key_rows(spec, frame).to_pylist()
    }

    organization = next(k.name for k in keys.blocking_keys(spec) if k.name.startswith("if("))
    sorted_words = next(k.name for k in keys.blocking_keys(spec) if "list_sort" in k.name)
    assert values[(1, organization)] == values[(2, organization)] == "coppertech"
    assert values[(5, sorted_words)] == "davis rebecca"


@pytest.mark.parametrize("entity_type", sorted(SPECS))
def test_every_blocking_rule_has_its_own_key_name(entity_type):
    spec = get_spec(entity_type)

    names = [key.name for key in keys.blocking_keys(spec)]

    assert len(set(names)) == len(spec.blocking_rules)


def test_records_being_matched_find_each_other_whatever_is_stored_for_them():
    spec = get_spec("customer")
    frame = frame_from_rows(spec, _stored("customer", CUSTOMERS))
    expected = keys.candidates(spec.entity_type, keys.key_rows(spec, frame))
    keys.rebuild_index(spec, frame)
    stored = keys.candidates(spec.entity_type, keys.key_rows(spec, frame))
    keys.write_keys(spec.entity_type, keys.key_rows(spec, frame.slice(0, 1)), stale=[])  # twice

    assert expected == stored == keys.candidates(spec.entity_type, keys.key_rows(spec, frame))
    assert _labels({(min(a, b), max(a, b)) for a, o in stored.items() for b in o}) == {
        (1, 2),
        (5, 6),
        (9, 10),
        (11, 12),
    }


def test_a_stored_stale_key_of_a_record_being_matched_finds_nothing():
    spec = get_spec("customer")
    frame = frame_from_rows(spec, _stored("customer", CUSTOMERS))
    keys.rebuild_index(spec, frame)
    first, second = frame["unique_id"].to_pylist()[:2]  # a pair by their keys
    moved = frame_from_rows(spec, [(first, {"name_key": "elsewhere", "country": "NZ"}, {})])

    found = keys.candidates(spec.entity_type, keys.key_rows(spec, moved))

    assert second not in found.get(first, set())  # its old keys, still stored, are not used


def test_a_key_shared_by_more_than_the_cap_is_skipped_counting_the_records_being_matched():
    spec = get_spec("customer")
    frame = frame_from_rows(spec, _stored("customer", CUSTOMERS))
    keys.rebuild_index(spec, frame)
    pair = keys.key_rows(spec, frame.slice(0, 2))

    assert keys.candidates(spec.entity_type, pair, cap=2)[frame["unique_id"][0].as_py()]
    assert not keys.candidates(spec.entity_type, pair, cap=1)[frame["unique_id"][0].as_py()]


@pytest.mark.parametrize(
    "value", ["NULL", 'say "hi"', "back\\slash", "{brace},comma", "straße ünïcode", " padded "]
)
def test_a_stored_key_is_found_whatever_characters_its_value_holds(value):
    spec = get_spec("customer")
    stored = frame_from_rows(spec, _stored("customer", [(1, {"tax_id_key": value}, {})]))
    keys.rebuild_index(spec, stored)
    changed = frame_from_rows(spec, _stored("customer", [(2, {"tax_id_key": value}, {})]))

    found = keys.candidates(spec.entity_type, keys.key_rows(spec, changed))

    assert found == {changed["unique_id"][0].as_py(): {stored["unique_id"][0].as_py()}}
