"""The mapping language: table-driven cases of what a rule makes of a payload, what a mapping
refuses at save time (field and reason), and what makes a payload unmappable (path, reason)."""

from __future__ import annotations

import pytest

from mdm.mappings import InvalidMapping, UnmappableRecord, compile_mapping, parse_path
from mdm.services.mappings import preview_mapping

PAYLOAD = {
    "Id": "001A",
    "Name": "Acme GmbH",
    "Owner": {"Name": "Jo", "Address": {"Country": "Deutschland"}},
    "Contacts": [{"Email": "a@acme.de"}, {"Email": "b@acme.de"}],
    "Street": "Hauptstr. 1\nHinterhaus",
    "First": "Ada",
    "Last": "Lovelace",
    "Born": "12/10/1815",
    "Updated": 1700000000,
    "UpdatedMs": "1700000000123",
    "Stamp": "2024-03-01 10:30:00 +0100",
    "Status": "A",
    "Active": True,
    "Blank": "  ",
    "odd.key": {"x[1]": "quoted"},
}

CASES = [
    ("a path alone", "Name", "Acme GmbH"),
    ("nested objects", {"path": "Owner.Address.Country"}, "Deutschland"),
    ("a list index", {"path": "Contacts[1].Email"}, "b@acme.de"),
    ("the last list item", {"path": "Contacts[-1].Email"}, "b@acme.de"),
    ("an index past the end is blank", {"path": "Contacts[5].Email"}, None),
    ("a missing field is blank", {"path": "Owner.Phone"}, None),
    ("a quoted field name", {"path": '["odd.key"]["x[1]"]'}, "quoted"),
    ("a constant", {"const": "organization"}, "organization"),
    ("a value map", {"path": "Owner.Address.Country", "map": {"Deutschland": "DE"}}, "DE"),
    ("an unmapped value is kept", {"path": "Status", "map": {"X": "y"}}, "A"),
    ("an unmapped value blanked", {"path": "Status", "map": {"X": "y"}, "unmapped": "blank"},
     None),
    ("a boolean maps by its JSON word", {"path": "Active", "map": {"true": "active"}}, "active"),
    ("split, first part", {"path": "Street", "split": {"separator": "\n", "index": 0}},
     "Hauptstr. 1"),
    ("split, second part", {"path": "Street", "split": {"separator": "\n", "index": 1}},
     "Hinterhaus"),
    ("split past the parts is blank", {"path": "Street", "split": {"separator": "\n",
                                                                    "index": 2}}, None),
    ("split with maxsplit", {"path": "Name", "split": {"separator": " ", "index": 1,
                                                        "maxsplit": 1}}, "GmbH"),
    ("concatenation", {"concat": ["First", "Last"], "separator": " "}, "Ada Lovelace"),
    ("concatenation skips blanks", {"concat": ["First", "Blank", "Last"], "separator": "-"},
     "Ada-Lovelace"),
    ("a date with its format", {"path": "Born", "date": "%m/%d/%Y"}, "1815-12-10"),
    ("a unix timestamp", {"path": "Updated", "datetime": "unix"}, "2023-11-14T22:13:20+00:00"),
    ("a unix timestamp in ms", {"path": "UpdatedMs", "datetime": "unix_ms"},
     "2023-11-14T22:13:20.123000+00:00"),
    ("a date-time with its format", {"path": "Stamp", "datetime": "%Y-%m-%d %H:%M:%S %z"},
     "2024-03-01T10:30:00+01:00"),
    ("a default for a blank", {"path": "Blank", "default": "n/a"}, "n/a"),
    ("a default for a missing field", {"path": "Nope", "default": "DE"}, "DE"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_rule_maps_the_payload(rule, expected):
    mapping = compile_mapping(
        {"fields": {"source_key": "Id", "name": rule}}, entity_type="customer"
    )

    assert mapping.apply(PAYLOAD).get("name") == expected


UNMAPPABLE = [
    ("a field of a list", {"path": "Contacts.Email"}, "Contacts.Email",
     "expected an object at Contacts, got a list"),
    ("an index of an object", {"path": "Owner[0]"}, "Owner[0]",
     "expected a list at Owner, got an object"),
    ("an object at the end", {"path": "Owner"}, "Owner", "expected a single value, got an object"),
    ("a date not in its format", {"path": "Born", "date": "%Y-%m-%d"}, "Born",
     "'12/10/1815' does not match the date format '%Y-%m-%d'"),
    ("a value the map must know", {"path": "Status", "map": {"X": "y"}, "unmapped": "reject"},
     "Status", "'A' is not in the value map"),
    ("a required value missing", {"path": "Nope", "required": True}, "Nope",
     "required, but missing or blank"),
    ("not a unix timestamp", {"path": "Name", "datetime": "unix"}, "Name",
     "'Acme GmbH' does not match the date-time format 'unix'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "path", "reason"), [c[1:] for c in UNMAPPABLE], ids=[c[0] for c in UNMAPPABLE]
)
def test_an_unmappable_payload_names_target_path_and_reason(rule, path, reason):
    mapping = compile_mapping(
        {"fields": {"source_key": "Id", "name": rule}}, entity_type="customer"
    )

    with pytest.raises(UnmappableRecord) as raised:
        mapping.apply(PAYLOAD)

    assert (raised.value.target, raised.value.path, raised.value.reason) == ("name", path, reason)


INVALID = [
    ("an unknown target attribute", {"colour": "Name"}, "fields.colour",
     "unknown target attribute for customer"),
    ("bad path syntax", {"name": "Owner..Name"}, "fields.name.path", "bad path 'Owner..Name'"),
    ("an unclosed bracket", {"name": "Contacts[0"}, "fields.name.path", "bad bracket"),
    ("a path starting with an index", {"name": "[0].Name"}, "fields.name.path",
     "starts with a field name"),
    ("a bad date format", {"date_of_birth": {"path": "Born", "date": "%Y-%Q-%d"}},
     "fields.date_of_birth.date", "unknown directive Q"),
    ("a date format with no directive", {"date_of_birth": {"path": "Born", "date": "YYYY"}},
     "fields.date_of_birth.date", "no directive"),
    ("an unknown transform", {"name": {"path": "Name", "uppercase": True}},
     "fields.name.uppercase", "unknown transform"),
    ("two sources", {"name": {"path": "Name", "const": "x"}}, "fields.name",
     "exactly one of path, const or concat"),
    ("no source", {"name": {"default": "x"}}, "fields.name",
     "exactly one of path, const or concat"),
    ("a concat of one", {"name": {"concat": ["Name"]}}, "fields.name.concat", "two or more"),
    ("a bad unmapped policy", {"name": {"path": "S", "map": {}, "unmapped": "drop"}},
     "fields.name.unmapped", "one of keep, blank, reject"),
    ("a split without separator", {"name": {"path": "S", "split": {"index": 1}}},
     "fields.name.split", "separator"),
    ("a map of objects", {"name": {"path": "S", "map": {"a": {"b": 1}}}}, "fields.name.map",
     "source value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "where", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_a_bad_mapping_is_refused_with_field_and_reason(fields, where, reason):
    with pytest.raises(InvalidMapping) as raised:
        compile_mapping({"fields": {"source_key": "Id", **fields}}, entity_type="customer")

    assert [(w, r) for w, r in raised.value.problems if w == where and reason in r], (
        raised.value.problems
    )


def test_a_mapping_without_source_key_is_refused():
    with pytest.raises(InvalidMapping) as raised:
        compile_mapping({"fields": {"name": "Name"}}, entity_type="customer")

    assert raised.value.problems == [
        ("fields.source_key", "required: which field holds the record's key")
    ]


def test_every_problem_is_listed_at_once():
    with pytest.raises(InvalidMapping) as raised:
        compile_mapping(
            {"fields": {"source_key": "Id", "colour": "x", "name": "a..b"}, "extra": 1},
            entity_type="customer",
        )

    assert [w for w, _ in raised.value.problems] == ["extra", "fields.colour", "fields.name.path"]


def test_a_mapping_for_another_entity_or_system_is_refused():
    with pytest.raises(InvalidMapping) as raised:
        compile_mapping(
            {"system": "erp", "entity": "product", "fields": {"source_key": "Id"}},
            entity_type="customer",
            system="crm",
        )

    assert [w for w, _ in raised.value.problems] == ["entity", "system"]


def test_references_and_meta_columns_are_targets():
    mapping = compile_mapping(
        {"fields": {"source_key": "Id", "parent_key": "Owner.Name", "deleted": "Active",
                    "source_updated_at": {"path": "Updated", "datetime": "unix"}}},
        entity_type="customer",
    )  # fmt: skip

    assert mapping.apply(PAYLOAD) == {
        "source_key": "001A",
        "parent_key": "Jo",
        "deleted": True,
        "source_updated_at": "2023-11-14T22:13:20+00:00",
    }


def test_preview_gives_before_after_and_rejections_in_order():
    mapping = compile_mapping(
        {"fields": {"source_key": "Id", "name": {"path": "Name", "required": True},
                    "email": "Mail"}},
        entity_type="customer",
    )  # fmt: skip

    results = preview_mapping(
        mapping=mapping,
        payloads=[{"Id": "1", "Name": "A", "Mail": "A@B.DE"}, {"Id": "2"}, {"Name": "B"}, "x",
                  {"Id": "3", "Name": "C", "Mail": "no mail"}],
    )  # fmt: skip

    assert [r["mapped"] for r in results] == [
        {"source_key": "1", "name": "A", "email": "A@B.DE"}, None, None, None,
        {"source_key": "3", "name": "C", "email": "no mail"}]  # fmt: skip
    assert results[0]["attributes"] == {"name": "A", "email": "a@b.de"}
    assert [r["rejection"] for r in results][:4] == [
        None,
        {"code": "unmappable", "target": "name", "path": "Name",
         "reason": "required, but missing or blank"},
        {"code": "unmappable", "target": "source_key", "path": "Id",
         "reason": "required, but missing or blank"},
        {"code": "not_an_object", "target": "", "path": "",
         "reason": "expected an object with named fields, got str"},
    ]  # fmt: skip
    assert results[4]["flagged"][0]["attribute"] == "email"


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a", ("a",)), ("a.b", ("a", "b")), ("a[0].b", ("a", 0, "b")), ("a[-1]", ("a", -1)),
     ('a["b.c"]', ("a", "b.c")), ("Billing Address.City", ("Billing Address", "City"))],
)  # fmt: skip
def test_path_syntax(text, segments):
    assert parse_path(text).segments == segments


def test_text_a_database_cannot_store_is_refused():
    with pytest.raises(InvalidMapping) as raised:
        compile_mapping(
            {"fields": {"source_key": "Id", "name": "Na\x00me"}}, entity_type="customer"
        )

    assert raised.value.problems == [
        ("fields.name", "contains a NUL character or a lone surrogate")
    ]
