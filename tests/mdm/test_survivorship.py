"""Unit tests for the pure survivorship function: no database, plain data in and out."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mdm.entities import (
    LONGEST,
    MOST_FREQUENT,
    MOST_RECENT,
    SOURCE_PRIORITY,
    STRATEGIES,
    SurvivorshipGroup,
)
from mdm.survivorship import PIN, RUNNER_UP_LIMIT, Candidate, Pin, Rule, Survived, is_empty, survive

EARLY = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
MIDDLE = datetime(2024, 3, 15, 12, 30, tzinfo=UTC)
LATE = datetime(2024, 6, 1, 18, 45, tzinfo=UTC)

# Global trust ranking: lower is more trusted. "legacy" is deliberately absent.
TRUST = {"erp": 0, "crm": 1, "web": 2}


def candidate(record_id, system, observed_at=MIDDLE, source_key="", **values):
    return Candidate(
        record_id=record_id,
        system=system,
        source_key=source_key or f"{system}-{record_id}",
        observed_at=observed_at,
        values=values,
    )


# --- source_priority ------------------------------------------------------------------------


def test_source_priority_prefers_the_first_listed_system():
    candidates = [
        candidate(1, "erp", name="Acme ERP"),
        candidate(2, "crm", name="Acme CRM"),
        candidate(3, "web", name="Acme Web"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY, system_order=("crm", "web", "erp"))}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme CRM"}


def test_source_priority_without_system_order_follows_trust_rank():
    candidates = [
        candidate(1, "web", name="Acme Web"),
        candidate(2, "crm", name="Acme CRM"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme CRM"}


def test_unlisted_system_follows_by_trust_rank():
    candidates = [
        candidate(1, "web", name="Acme Web"),
        candidate(2, "crm", name="Acme CRM"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY, system_order=("legacy",))}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme CRM"}


def test_listed_system_beats_a_more_trusted_unlisted_one():
    candidates = [
        candidate(1, "erp", name="Acme ERP"),
        candidate(2, "web", name="Acme Web"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY, system_order=("web",))}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Web"}


def test_system_missing_from_trust_rank_ranks_last():
    candidates = [
        candidate(1, "legacy", LATE, name="Acme Legacy"),
        candidate(2, "web", EARLY, name="Acme Web"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Web"}


def test_source_priority_same_rank_tie_breaks_by_most_recent():
    candidates = [
        candidate(1, "crm", EARLY, name="Acme Old"),
        candidate(2, "crm", LATE, name="Acme New"),
        candidate(3, "crm", MIDDLE, name="Acme Mid"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme New"}


def test_source_priority_same_rank_and_time_tie_breaks_by_lowest_record_id():
    candidates = [
        candidate(7, "crm", MIDDLE, name="Acme Seven"),
        candidate(3, "crm", MIDDLE, name="Acme Three"),
        candidate(5, "crm", MIDDLE, name="Acme Five"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Three"}


# --- most_recent ----------------------------------------------------------------------------


def test_most_recent_prefers_the_latest_observation():
    candidates = [
        candidate(1, "erp", EARLY, email="old@acme.test"),
        candidate(2, "web", LATE, email="new@acme.test"),
        candidate(3, "crm", MIDDLE, email="mid@acme.test"),
    ]
    rules = {"email": Rule(MOST_RECENT)}

    result = survive(fields=["email"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"email": "new@acme.test"}


def test_most_recent_compares_instants_across_timezones():
    plus_five = timezone(timedelta(hours=5))
    candidates = [
        # 2024-03-15 14:00 at +05:00 is 09:00 UTC: earlier, despite the larger wall-clock time.
        candidate(1, "erp", datetime(2024, 3, 15, 14, 0, tzinfo=plus_five), email="a@acme.test"),
        candidate(2, "web", datetime(2024, 3, 15, 10, 0, tzinfo=UTC), email="b@acme.test"),
    ]
    rules = {"email": Rule(MOST_RECENT)}

    result = survive(fields=["email"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"email": "b@acme.test"}


def test_most_recent_tie_breaks_by_source_rank():
    candidates = [
        candidate(1, "web", LATE, email="web@acme.test"),
        candidate(2, "erp", LATE, email="erp@acme.test"),
        candidate(3, "crm", EARLY, email="crm@acme.test"),
    ]
    rules = {"email": Rule(MOST_RECENT, system_order=("web", "erp"))}

    result = survive(fields=["email"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"email": "web@acme.test"}


def test_most_recent_same_instant_in_different_timezones_is_a_tie():
    plus_two = timezone(timedelta(hours=2))
    candidates = [
        candidate(1, "web", datetime(2024, 3, 15, 12, 0, tzinfo=UTC), email="web@acme.test"),
        candidate(2, "erp", datetime(2024, 3, 15, 14, 0, tzinfo=plus_two), email="erp@acme.test"),
    ]
    rules = {"email": Rule(MOST_RECENT)}

    result = survive(fields=["email"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"email": "erp@acme.test"}


def test_most_recent_same_time_and_rank_tie_breaks_by_lowest_record_id():
    candidates = [
        candidate(9, "crm", LATE, email="nine@acme.test"),
        candidate(4, "crm", LATE, email="four@acme.test"),
    ]
    rules = {"email": Rule(MOST_RECENT)}

    result = survive(fields=["email"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"email": "four@acme.test"}


# --- most_frequent --------------------------------------------------------------------------


def test_most_frequent_prefers_the_most_common_value():
    candidates = [
        candidate(1, "erp", country="DE"),
        candidate(2, "crm", country="FR"),
        candidate(3, "web", country="FR"),
    ]
    rules = {"country": Rule(MOST_FREQUENT)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "FR"}


def test_most_frequent_tie_breaks_by_source_rank():
    candidates = [
        candidate(1, "web", LATE, country="FR"),
        candidate(2, "crm", EARLY, country="DE"),
        candidate(3, "web", LATE, country="FR"),
        candidate(4, "erp", EARLY, country="DE"),
    ]
    rules = {"country": Rule(MOST_FREQUENT)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "DE"}


def test_most_frequent_same_rank_tie_breaks_by_most_recent():
    candidates = [
        candidate(1, "crm", EARLY, country="DE"),
        candidate(2, "crm", LATE, country="FR"),
    ]
    rules = {"country": Rule(MOST_FREQUENT)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "FR"}


def test_most_frequent_same_rank_and_time_tie_breaks_by_lowest_record_id():
    candidates = [
        candidate(8, "crm", MIDDLE, country="FR"),
        candidate(6, "crm", MIDDLE, country="DE"),
    ]
    rules = {"country": Rule(MOST_FREQUENT)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "DE"}


def test_most_frequent_ignores_empty_values_when_counting():
    candidates = [
        candidate(1, "erp", country=None),
        candidate(2, "crm", country=""),
        candidate(3, "web", country="   "),
        candidate(4, "legacy", country="NL"),
    ]
    rules = {"country": Rule(MOST_FREQUENT)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "NL"}


def test_most_frequent_counts_unhashable_values():
    candidates = [
        candidate(1, "erp", tags=["a"]),
        candidate(2, "crm", tags=["b", "c"]),
        candidate(3, "web", tags=["b", "c"]),
    ]
    rules = {"tags": Rule(MOST_FREQUENT)}

    result = survive(fields=["tags"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"tags": ["b", "c"]}
    assert result.lineage["tags"]["runner_ups"] == [
        {"value": ["a"], "record_id": 1, "system": "erp", "source_key": "erp-1"}
    ]


# --- longest --------------------------------------------------------------------------------


def test_longest_prefers_the_longest_value():
    candidates = [
        candidate(1, "erp", name="Acme"),
        candidate(2, "web", name="Acme Corporation GmbH"),
        candidate(3, "crm", name="Acme Corp"),
    ]
    rules = {"name": Rule(LONGEST)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Corporation GmbH"}


def test_longest_strips_whitespace_before_measuring():
    candidates = [
        candidate(1, "web", name="      Acme Co      "),
        candidate(2, "crm", name="Acme Corp"),
    ]
    rules = {"name": Rule(LONGEST)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Corp"}


def test_longest_measures_non_string_values_by_their_text():
    candidates = [
        candidate(1, "erp", quantity=7),
        candidate(2, "web", quantity=1200),
    ]
    rules = {"quantity": Rule(LONGEST)}

    result = survive(fields=["quantity"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"quantity": 1200}


def test_longest_tie_breaks_by_source_rank():
    candidates = [
        candidate(1, "web", LATE, name="Acme AG"),
        candidate(2, "crm", EARLY, name="Acme SA"),
    ]
    rules = {"name": Rule(LONGEST)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme SA"}


def test_longest_same_rank_tie_breaks_by_most_recent():
    candidates = [
        candidate(1, "crm", EARLY, name="Acme AG"),
        candidate(2, "crm", LATE, name="Acme SA"),
    ]
    rules = {"name": Rule(LONGEST)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme SA"}


def test_longest_same_rank_and_time_tie_breaks_by_lowest_record_id():
    candidates = [
        candidate(12, "crm", MIDDLE, name="Acme AG"),
        candidate(11, "crm", MIDDLE, name="Acme SA"),
    ]
    rules = {"name": Rule(LONGEST)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme SA"}


# --- empty values ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n"])
def test_is_empty_for_none_and_blank_strings(value):
    assert is_empty(value) is True


@pytest.mark.parametrize("value", [0, False, "0", " x ", [], {}])
def test_is_empty_is_false_for_filled_values(value):
    assert is_empty(value) is False


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_value_never_beats_a_filled_one(strategy, empty):
    candidates = [
        # The empty value comes from the favoured system, most recently, twice, lowest id and
        # (for "   ") with the longest raw text: it would win every rule if it counted.
        candidate(1, "erp", LATE, name=empty),
        candidate(2, "erp", LATE, name=empty),
        candidate(3, "web", EARLY, name="A"),
    ]
    rules = {"name": Rule(strategy, system_order=("erp",))}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "A"}
    assert result.lineage["name"]["record_id"] == 3


def test_missing_key_counts_as_empty():
    candidates = [
        candidate(1, "erp", LATE),
        candidate(2, "web", EARLY, name="Acme Web"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme Web"}


def test_zero_is_a_filled_value():
    candidates = [
        candidate(1, "erp", quantity=0),
        candidate(2, "web", quantity=5),
    ]
    rules = {"quantity": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["quantity"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"quantity": 0}


def test_field_no_member_fills_is_absent():
    candidates = [
        candidate(1, "erp", name="Acme", phone=None),
        candidate(2, "crm", name="Acme", phone="  "),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY), "phone": Rule(MOST_RECENT)}

    result = survive(
        fields=["name", "phone"], candidates=candidates, rules=rules, system_rank=TRUST
    )

    assert "phone" not in result.values
    assert "phone" not in result.lineage


def test_no_candidates_yields_an_empty_result():
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=[], rules=rules)

    assert result == Survived(values={}, lineage={})


def test_only_requested_fields_are_decided():
    candidates = [candidate(1, "erp", name="Acme", city="Berlin")]
    rules = {"name": Rule(SOURCE_PRIORITY), "city": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"name": "Acme"}
    assert set(result.lineage) == {"name"}


# --- pins -----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pin_beats_every_rule(strategy):
    candidates = [
        candidate(1, "erp", LATE, name="Acme Corporation GmbH"),
        candidate(2, "erp", LATE, name="Acme Corporation GmbH"),
    ]
    rules = {"name": Rule(strategy, system_order=("erp",))}
    pins = {"name": Pin("ACME", reason="legal name", pinned_by="steward")}

    result = survive(
        fields=["name"], candidates=candidates, rules=rules, pins=pins, system_rank=TRUST
    )

    assert result.values == {"name": "ACME"}
    assert result.lineage["name"]["rule"] == PIN


def test_pin_with_no_candidates_sets_the_field():
    pins = {"tax_id": Pin("DE123456789", reason="from contract", pinned_by="alice")}

    result = survive(fields=["tax_id"], candidates=[], rules={}, pins=pins)

    assert result.values == {"tax_id": "DE123456789"}
    assert result.lineage["tax_id"] == {
        "value": "DE123456789",
        "rule": PIN,
        "record_id": None,
        "system": None,
        "source_key": None,
        "pinned_by": "alice",
        "reason": "from contract",
        "runner_ups": [],
    }


def test_pin_sets_a_field_no_member_fills():
    candidates = [candidate(1, "erp", tax_id=None), candidate(2, "crm", tax_id="")]
    rules = {"tax_id": Rule(SOURCE_PRIORITY)}
    pins = {"tax_id": Pin("DE123456789")}

    result = survive(
        fields=["tax_id"], candidates=candidates, rules=rules, pins=pins, system_rank=TRUST
    )

    assert result.values == {"tax_id": "DE123456789"}
    assert result.lineage["tax_id"]["runner_ups"] == []


def test_pin_lineage_lists_the_values_it_beat_without_the_pinned_one():
    candidates = [
        candidate(3, "web", source_key="W-3", name="Acme Web"),
        candidate(1, "erp", source_key="E-1", name="Acme ERP"),
        candidate(2, "crm", source_key="C-2", name="ACME"),
        candidate(4, "crm", source_key="C-4", name=" "),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}
    pins = {"name": Pin("ACME", reason="legal name", pinned_by="bob")}

    result = survive(
        fields=["name"], candidates=candidates, rules=rules, pins=pins, system_rank=TRUST
    )

    assert result.lineage["name"] == {
        "value": "ACME",
        "rule": PIN,
        "record_id": None,
        "system": None,
        "source_key": None,
        "pinned_by": "bob",
        "reason": "legal name",
        "runner_ups": [
            {"value": "Acme ERP", "record_id": 1, "system": "erp", "source_key": "E-1"},
            {"value": "Acme Web", "record_id": 3, "system": "web", "source_key": "W-3"},
        ],
    }


def test_pin_on_one_field_leaves_the_others_to_their_rules():
    candidates = [
        candidate(1, "erp", name="Acme ERP", city="Berlin"),
        candidate(2, "web", name="Acme Web", city="Hamburg"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY), "city": Rule(SOURCE_PRIORITY)}
    pins = {"name": Pin("ACME")}

    result = survive(
        fields=["name", "city"], candidates=candidates, rules=rules, pins=pins, system_rank=TRUST
    )

    assert result.values == {"name": "ACME", "city": "Berlin"}
    assert result.lineage["city"]["rule"] == SOURCE_PRIORITY


def test_pin_for_a_field_not_requested_is_ignored():
    candidates = [candidate(1, "erp", name="Acme")]
    rules = {"name": Rule(SOURCE_PRIORITY)}
    pins = {"city": Pin("Berlin")}

    result = survive(
        fields=["name"], candidates=candidates, rules=rules, pins=pins, system_rank=TRUST
    )

    assert result.values == {"name": "Acme"}


# --- lineage --------------------------------------------------------------------------------


def test_lineage_names_the_winning_record_and_runner_ups():
    candidates = [
        candidate(10, "web", EARLY, source_key="W-10", name="Acme Web"),
        candidate(20, "erp", LATE, source_key="E-20", name="Acme ERP"),
        candidate(30, "crm", MIDDLE, source_key="C-30", name="Acme CRM"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.lineage == {
        "name": {
            "value": "Acme ERP",
            "rule": SOURCE_PRIORITY,
            "record_id": 20,
            "system": "erp",
            "source_key": "E-20",
            "runner_ups": [
                {"value": "Acme Web", "record_id": 10, "system": "web", "source_key": "W-10"},
                {"value": "Acme CRM", "record_id": 30, "system": "crm", "source_key": "C-30"},
            ],
        }
    }


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lineage_records_the_strategy_that_decided(strategy):
    candidates = [candidate(1, "erp", name="Acme")]
    rules = {"name": Rule(strategy)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.lineage["name"]["rule"] == strategy


def test_runner_ups_list_each_distinct_value_once_with_its_lowest_record():
    candidates = [
        candidate(5, "erp", country="DE"),
        candidate(9, "web", country="FR"),
        candidate(4, "crm", country="FR"),
        candidate(7, "erp", country="DE"),
    ]
    rules = {"country": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["country"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.values == {"country": "DE"}
    assert result.lineage["country"]["runner_ups"] == [
        {"value": "FR", "record_id": 4, "system": "crm", "source_key": "crm-4"}
    ]


def test_runner_ups_leave_out_empty_values():
    candidates = [
        candidate(1, "erp", name="Acme"),
        candidate(2, "crm", name=None),
        candidate(3, "web", name="  "),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert result.lineage["name"]["runner_ups"] == []


def test_runner_ups_are_capped_at_the_limit():
    candidates = [
        candidate(1, "erp", name="Acme 1"),
        candidate(2, "web", name="Acme 2"),
        candidate(3, "web", name="Acme 3"),
        candidate(4, "web", name="Acme 4"),
        candidate(5, "web", name="Acme 5"),
        candidate(6, "web", name="Acme 6"),
        candidate(7, "web", name="Acme 7"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules, system_rank=TRUST)

    assert len(result.lineage["name"]["runner_ups"]) == RUNNER_UP_LIMIT
    assert result.lineage["name"]["runner_ups"] == [
        {"value": "Acme 2", "record_id": 2, "system": "web", "source_key": "web-2"},
        {"value": "Acme 3", "record_id": 3, "system": "web", "source_key": "web-3"},
        {"value": "Acme 4", "record_id": 4, "system": "web", "source_key": "web-4"},
        {"value": "Acme 5", "record_id": 5, "system": "web", "source_key": "web-5"},
        {"value": "Acme 6", "record_id": 6, "system": "web", "source_key": "web-6"},
    ]


# --- determinism and validation -------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_result_is_independent_of_candidate_order(strategy):
    forward = [
        candidate(1, "crm", MIDDLE, name="Acme SA"),
        candidate(2, "crm", MIDDLE, name="Acme AG"),
        candidate(3, "legacy", LATE, name="Acme NV"),
        candidate(4, "web", MIDDLE, name="Acme SA"),
        candidate(5, "web", LATE, name="Acme AG"),
    ]
    backward = [forward[4], forward[3], forward[2], forward[1], forward[0]]
    rules = {"name": Rule(strategy)}

    from_forward = survive(fields=["name"], candidates=forward, rules=rules, system_rank=TRUST)
    from_backward = survive(fields=["name"], candidates=backward, rules=rules, system_rank=TRUST)

    assert from_forward == from_backward


def test_survive_works_without_pins_or_trust_rank():
    candidates = [
        candidate(2, "web", MIDDLE, name="Acme Web"),
        candidate(1, "erp", MIDDLE, name="Acme ERP"),
    ]
    rules = {"name": Rule(SOURCE_PRIORITY)}

    result = survive(fields=["name"], candidates=candidates, rules=rules)

    assert result.values == {"name": "Acme ERP"}


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown survivorship strategy: 'oldest'"):
        Rule("oldest")


# --- a single member (every new golden record takes this path) -----------------------------


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_sole_member_gives_what_the_general_path_gives(strategy):
    only = candidate(
        7, "crm", name="Acme GmbH", city="  ", email=None, employees=12, country="DE", note=""
    )
    blank = candidate(8, "web", name="", city=None)  # fills nothing: cannot change the outcome
    fields = ["name", "city", "email", "employees", "country", "note", "absent"]
    rules = {f: Rule(strategy) for f in fields}

    sole = survive(fields=fields, candidates=[only], rules=rules, system_rank=TRUST)
    general = survive(fields=fields, candidates=[only, blank], rules=rules, system_rank=TRUST)

    assert sole == general
    assert sole.values == {"name": "Acme GmbH", "employees": 12, "country": "DE"}
    assert sole.lineage["name"] == {
        "value": "Acme GmbH",
        "rule": strategy,
        "record_id": 7,
        "system": "crm",
        "source_key": "crm-7",
        "runner_ups": [],
    }


def test_a_sole_member_still_loses_to_a_pin():
    only = candidate(7, "crm", name="Acme GmbH")
    result = survive(
        fields=["name"],
        candidates=[only],
        rules={"name": Rule(LONGEST)},
        pins={"name": Pin("ACME", reason="legal name", pinned_by="ann")},
    )
    assert result.values == {"name": "ACME"}
    assert result.lineage["name"]["rule"] == PIN
    assert result.lineage["name"]["runner_ups"][0]["value"] == "Acme GmbH"


# --- groups: the address block survives from one record ------------------------------------

ADDRESS = SurvivorshipGroup(
    "address",
    ("address_line1", "address_line2", "city", "region", "postal_code", "country"),
    follows=("tax_id",),
)
ADDRESS_FIELDS = ["name", *ADDRESS.attributes, "tax_id"]


def _address_rules(country=MOST_FREQUENT):
    rules = {f: Rule(SOURCE_PRIORITY) for f in ADDRESS_FIELDS}
    rules["country"] = Rule(country)
    return rules


def test_the_address_block_comes_from_one_record_never_a_street_and_another_records_country():
    # Wilson Capital: the German record's street and city, two Canadian records' country.
    german = candidate(
        1,
        "erp",
        name="Wilson Capital GmbH & Co KG",
        address_line1="Hauptstraße 5",
        city="Berlin",
        postal_code="10115",
        country="DE",
    )
    canadian = candidate(2, "crm", name="Wilson Capital Ltd", country="CA")
    another = candidate(3, "web", name="Wilson Capital", country="CA")

    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[german, canadian, another],
        rules=_address_rules(),
        system_rank=TRUST,
        groups=[ADDRESS],
    )

    assert result.values["address_line1"] == "Hauptstraße 5"
    assert result.values["country"] == "DE"  # not the more frequent CA of other records
    for name in ("address_line1", "city", "postal_code", "country"):
        assert result.lineage[name]["record_id"] == 1
        assert result.lineage[name]["group"] == {
            "name": "address",
            "by": "address_line1",
            "record_id": 1,
        }


def test_without_groups_fields_survive_one_by_one():
    german = candidate(1, "erp", address_line1="Hauptstraße 5", country="DE")
    canadian = candidate(2, "crm", country="CA")
    another = candidate(3, "web", country="CA")
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[german, canadian, another],
        rules=_address_rules(),
        system_rank=TRUST,
    )
    assert (result.values["address_line1"], result.values["country"]) == ("Hauptstraße 5", "CA")


def test_a_group_field_the_chosen_record_lacks_stays_empty():
    with_street = candidate(1, "erp", address_line1="1 Main St", city="Springfield")
    with_country = candidate(2, "crm", country="US", region="IL")
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[with_street, with_country],
        rules=_address_rules(),
        system_rank=TRUST,
        groups=[ADDRESS],
    )
    assert result.values == {"address_line1": "1 Main St", "city": "Springfield"}


def test_the_first_filled_field_of_the_group_decides_by_its_rule():
    erp = candidate(1, "erp", city="Lyon", country="FR")
    crm = candidate(2, "crm", city="Paris", postal_code="75001", country="FR")
    rules = _address_rules()
    rules["city"] = Rule(SOURCE_PRIORITY, system_order=("crm", "erp"))
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[erp, crm],
        rules=rules,
        system_rank=TRUST,
        groups=[ADDRESS],
    )
    assert result.values == {"city": "Paris", "postal_code": "75001", "country": "FR"}
    assert result.lineage["city"]["group"]["by"] == "city"


def test_a_pin_in_a_group_still_wins_and_the_rest_stays_from_one_record():
    german = candidate(1, "erp", address_line1="Hauptstraße 5", city="Berlin", country="DE")
    other = candidate(2, "crm", address_line1="Unter den Linden 1", city="Potsdam", country="DE")
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[german, other],
        rules=_address_rules(),
        pins={"city": Pin("Berlin-Mitte", reason="registry", pinned_by="ann")},
        system_rank=TRUST,
        groups=[ADDRESS],
    )
    assert result.values["city"] == "Berlin-Mitte"
    assert result.lineage["city"]["rule"] == PIN
    assert result.values["address_line1"] == "Hauptstraße 5"
    assert result.lineage["country"]["record_id"] == 1


def test_a_sole_member_gives_what_the_general_path_gives_with_groups():
    only = candidate(7, "crm", name="Acme", city="Berlin", country="DE")
    blank = candidate(8, "web", name="")
    rules = _address_rules()
    sole = survive(fields=ADDRESS_FIELDS, candidates=[only], rules=rules, groups=[ADDRESS])
    general = survive(
        fields=ADDRESS_FIELDS, candidates=[only, blank], rules=rules, groups=[ADDRESS]
    )
    assert sole == general
    assert sole.lineage["country"]["group"] == {"name": "address", "by": "city", "record_id": 7}


# --- spelling: the best-written form of the same value ------------------------------------


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        (["ACME CORPORATION", "Acme Corporation"], "Acme Corporation"),
        (["acme corporation", "Acme Corporation"], "Acme Corporation"),
        (["MULLER GMBH", "Müller GmbH"], "Müller GmbH"),
        (["Muller GmbH", "Müller GmbH"], "Müller GmbH"),
        (["ACME CORPORATION", "Acme Corp."], "ACME CORPORATION"),  # another value: rule wins
        (["ACME, INC.", "Acme Inc"], "Acme Inc"),  # punctuation aside, the same value
    ],
)
def test_the_best_written_spelling_of_the_same_value_wins(spellings, expected):
    # The ERP (most trusted) sends upper case; longest ties go to it.
    candidates = [
        candidate(i, system, name=v)
        for i, (system, v) in enumerate(zip(("erp", "crm"), spellings, strict=True), start=1)
    ]
    result = survive(
        fields=["name"], candidates=candidates, rules={"name": Rule(LONGEST)}, system_rank=TRUST
    )
    assert result.values["name"] == expected
    writer = next(c for c in candidates if c.values["name"] == expected)
    assert result.lineage["name"]["record_id"] == writer.record_id


def test_a_pin_beats_the_best_spelling():
    candidates = [
        candidate(1, "erp", name="ACME CORPORATION"),
        candidate(2, "crm", name="Acme Corporation"),
    ]
    result = survive(
        fields=["name"],
        candidates=candidates,
        rules={"name": Rule(LONGEST)},
        pins={"name": Pin("ACME CORPORATION", reason="legal name")},
        system_rank=TRUST,
    )
    assert result.values["name"] == "ACME CORPORATION"


def test_a_tax_id_goes_with_the_country_of_its_record_when_that_record_has_one():
    german = candidate(1, "crm", address_line1="Hauptstraße 5", country="DE", tax_id="136695976")
    british = candidate(2, "erp", tax_id="980780684", country="GB")  # the more trusted system
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[german, british],
        rules={**_address_rules(), "address_line1": Rule(SOURCE_PRIORITY)},
        system_rank=TRUST,
        groups=[ADDRESS],
    )
    assert (result.values["tax_id"], result.values["country"]) == ("136695976", "DE")
    assert result.lineage["tax_id"]["group"] == {
        "name": "address",
        "by": "address_line1",
        "record_id": 1,
        "follows": True,
    }


def test_a_tax_id_the_address_record_lacks_survives_by_its_own_rule():
    german = candidate(1, "crm", address_line1="Hauptstraße 5", country="DE")
    british = candidate(2, "erp", tax_id="GB980780684")
    result = survive(
        fields=ADDRESS_FIELDS,
        candidates=[german, british],
        rules=_address_rules(),
        system_rank=TRUST,
        groups=[ADDRESS],
    )
    assert result.values["tax_id"] == "GB980780684"
    assert "group" not in result.lineage["tax_id"]
    sole = survive(
        fields=ADDRESS_FIELDS, candidates=[british], rules=_address_rules(), groups=[ADDRESS]
    )
    assert "group" not in sole.lineage["tax_id"]
