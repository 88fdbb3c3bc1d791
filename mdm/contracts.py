"""Published shapes, generated from the entity declarations: the JSON Schemas of golden record
values and lineage, of source record input, and of every event type with its version.

One generator serves two documents: the event contracts (standalone JSON Schema 2020-12, at
`/api/v1/events/schemas` and in docs/events.md) and the OpenAPI components of the API (the
same definitions, referenced from `#/components/schemas/`). Adding an attribute to
`mdm.entities` changes both; nothing here lists an attribute by hand.

Event compatibility rule: within one `schema_version` of an event type, changes are additive
only — new optional properties, never a removed or renamed property, a narrowed type or a new
required property. Consumers ignore properties they do not know (the schemas allow them). A
breaking change is a new version, announced in docs/events.md; every event carries the
version it was written with (`payload.schema_version`; events stored before versioning are
served as version 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mdm.entities import ENTITIES, STRATEGIES, Attribute, EntityType
from mdm.normalize import NORMALIZERS

Schema = dict[str, Any]
Ref = Callable[[str], Schema]

GOLDEN_CREATED = "golden.created"
GOLDEN_UPDATED = "golden.updated"
GOLDEN_MERGED = "golden.merged"
GOLDEN_SPLIT = "golden.split"
XREF_CHANGED = "xref.changed"
# Every event type and the version of its schema that events are written with now.
EVENT_VERSIONS: dict[str, int] = {
    GOLDEN_CREATED: 1,
    GOLDEN_UPDATED: 1,
    GOLDEN_MERGED: 1,
    GOLDEN_SPLIT: 1,
    XREF_CHANGED: 1,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_VERSIONS)
EVENT_DESCRIPTIONS = {
    GOLDEN_CREATED: "A golden record was created (a new source record, or a split).",
    GOLDEN_UPDATED: "A golden record's values, status, relations or live members changed; "
    "`changed` names the values that changed (none when only the members did).",
    GOLDEN_MERGED: "A golden record was merged into a survivor; its ID now redirects there.",
    GOLDEN_SPLIT: "Source records were split out of a golden record into a new one.",
    XREF_CHANGED: "A source record moved from one golden record to another.",
}
GOLDEN_STATUSES = ("active", "merged", "retired")
LINEAGE_RULES = (*STRATEGIES, "pin")
COMPATIBILITY_RULE = (
    "Within one schema_version of an event type, changes are additive only: new optional "
    "properties may appear; nothing is removed, renamed, narrowed or newly required. "
    "Consumers ignore properties they do not know. A breaking change is a new version."
)

_STRING: Schema = {"type": "string"}
# Each kind's normalized value (what golden records and events hold), as JSON Schema.
VALUE_SCHEMAS: dict[str, Schema] = {
    "text": _STRING,
    "name": _STRING,
    "person_name": _STRING,
    "address": _STRING,
    "city": _STRING,
    "postal_code": _STRING,
    "code": _STRING,
    "tax_id": {"type": "string", "description": "upper-case letters and digits"},
    "choice": _STRING,  # narrowed to the attribute's choices by `value_schema`
    "date": {"type": "string", "format": "date"},
    "email": {"type": "string", "format": "email"},
    "phone": {"type": "string", "pattern": r"^\+[0-9]{2,15}$", "description": "E.164"},
    "website": {"type": "string", "description": "the registrable domain, e.g. acme.co.uk"},
    "country": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2"},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"},
    "gtin": {"type": "string", "pattern": "^[0-9]{8,14}$"},
    "lei": {"type": "string", "pattern": "^[0-9A-Z]{18}[0-9]{2}$", "description": "ISO 17442"},
    "duns": {"type": "string", "pattern": "^[0-9]{9}$", "description": "D-U-N-S number"},
    "decimal": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
        "description": "a decimal number as a string (exact)",
    },
    "integer": {"type": "integer"},
}
# What a source system may send for each kind (raw; normalized by ingest, which accepts more
# spellings than these types say — a value it cannot normalize is kept raw and flagged).
INPUT_SCHEMAS: dict[str, Schema] = {
    **dict.fromkeys(VALUE_SCHEMAS, _STRING),
    "choice": _STRING,  # narrowed to the attribute's choices by `input_schema`
    "date": {"type": "string", "format": "date"},
    "decimal": {"type": ["string", "number"]},
    "integer": {"type": "integer"},
}
for _kind in NORMALIZERS:  # every kind of attribute has its published form
    assert _kind in VALUE_SCHEMAS and _kind in INPUT_SCHEMAS, _kind


def _camel(*parts: str) -> str:
    return "".join(
        word.capitalize() for part in parts for word in part.replace(".", "_").split("_")
    )


def choice_name(entity: EntityType, attribute: Attribute) -> str:
    """The component name of an attribute's choices, e.g. `ContractStatus`."""
    return _camel(entity.name, attribute.name)


def values_name(entity: EntityType) -> str:
    return _camel(entity.name, "values")


def _described(schema: Schema, attribute: Attribute) -> Schema:
    text = attribute.verbose_name
    if schema.get("description") and schema["description"] not in text:
        text = f"{text}: {schema['description']}"
    return {**schema, "description": text[0].upper() + text[1:]}


def value_schema(entity: EntityType, attribute: Attribute, ref: Ref) -> Schema:
    if attribute.choices:
        return ref(choice_name(entity, attribute))
    return _described(VALUE_SCHEMAS[attribute.kind], attribute)


def input_schema(entity: EntityType, attribute: Attribute, ref: Ref) -> Schema:
    if attribute.choices:
        return {"oneOf": [ref(choice_name(entity, attribute)), {"type": "null"}]}
    schema = dict(INPUT_SCHEMAS[attribute.kind])
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return _described({**schema, "type": [*kinds, "null"]}, attribute)


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def entity_definitions(entity: EntityType, ref: Ref) -> dict[str, Schema]:
    """Choices, values, lineage and relations of one entity type."""
    prefix = _camel(entity.name)
    definitions: dict[str, Schema] = {
        choice_name(entity, a): {"type": "string", "enum": list(a.choices)}
        for a in entity.attributes
        if a.choices
    }
    definitions[values_name(entity)] = _object(
        {a.name: value_schema(entity, a, ref) for a in entity.attributes},
        additionalProperties=False,
        description=f"The survived attributes of a {entity.name} golden record "
        "(an attribute no live member has is left out).",
    )
    definitions[f"{prefix}Lineage"] = _object(
        {name: ref("LineageEntry") for name in entity.survived_fields},
        additionalProperties=False,
        description="Per survived field: the rule that decided it and the source record it "
        "came from.",
    )
    definitions[f"{prefix}Relations"] = _object(
        {
            r.relation: {
                "type": ["string", "null"],
                "description": f"The {r.target} golden record that `{r.column}` resolves to.",
            }
            for r in entity.references
        },
        tuple(r.relation for r in entity.references),
        additionalProperties=False,
    )
    return definitions


def input_definitions(entity: EntityType, ref: Ref) -> dict[str, Schema]:
    """What a source system sends for one entity type: the attributes (`…AttributesInput`,
    also the match probe's), a record for PUT (`…RecordInput`) and a batch item
    (`…BatchRecordInput`, which names its `source_key`). Fields not declared are allowed
    and kept on the source record as `extra`."""
    prefix = _camel(entity.name)
    attributes = {a.name: input_schema(entity, a, ref) for a in entity.attributes}
    references = {
        r.column: {
            "type": ["string", "null"],
            "description": f"Source key of the {r.target} (same source system) this refers to.",
        }
        for r in entity.references
    }
    meta: dict[str, Any] = {
        "source_updated_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When the source changed the record; an older update than the "
            "stored one is ignored (`stale`).",
        },
        "deleted": {"type": "boolean", "description": "true: a tombstone."},
    }
    key = {"type": "string", "minLength": 1, "maxLength": 255}
    extras: dict[str, Any] = {"additionalProperties": True}
    return {
        f"{prefix}AttributesInput": _object(
            attributes, description=f"A {entity.name}'s attributes, raw.", **extras
        ),
        f"{prefix}RecordInput": _object(
            {
                **attributes,
                **references,
                **meta,
                "source_key": {**key, "description": "The path's key, if given at all."},
            },
            description=f"A {entity.name} source record. Undeclared fields are kept as extra.",
            **extras,
        ),
        f"{prefix}BatchRecordInput": _object(
            {"source_key": key, **attributes, **references, **meta},
            ("source_key",),
            description=f"A {entity.name} source record in a batch.",
            **extras,
        ),
        f"{prefix}BatchInput": _object(
            {
                "records": {
                    "type": "array",
                    "items": ref(f"{prefix}BatchRecordInput"),
                    "maxItems": 10_000,
                }
            },
            ("records",),
            additionalProperties=False,
            description=f"Up to 10,000 {entity.name} source records (a bare JSON array of "
            "them is accepted too).",
        ),
    }


def shared_definitions(ref: Ref) -> dict[str, Schema]:
    """Definitions every entity type and event shares."""
    return {
        "Entity": {"type": "string", "enum": list(ENTITIES), "description": "Entity type."},
        "GoldenStatus": {"type": "string", "enum": list(GOLDEN_STATUSES)},
        "GoldenStatusFilter": {
            "type": "string",
            "enum": [*GOLDEN_STATUSES, "any"],
            "description": "Golden records of this status; lists show active ones unless a "
            "status (`any`: every one) or `updated_since` is asked for.",
        },
        "EventType": {"type": "string", "enum": list(EVENT_TYPES)},
        "XrefKey": _object(
            {"system": {"type": "string"}, "source_key": {"type": "string"}},
            ("system", "source_key"),
            description="A source record's key: its source system and its key there.",
        ),
        "XrefsByGolden": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": ref("XrefKey")},
            "description": "Golden ID → the live keys of its source records.",
        },
        "LineageRunnerUp": _object(
            {
                "value": {"type": ["string", "integer"]},
                "record_id": {"type": "integer"},
                "system": {"type": "string"},
                "source_key": {"type": "string"},
            },
            ("value", "record_id", "system", "source_key"),
        ),
        "LineageEntry": _object(
            {
                "value": {"type": ["string", "integer"]},
                "rule": {"type": "string", "enum": list(LINEAGE_RULES)},
                "record_id": {"type": ["integer", "null"]},
                "system": {"type": ["string", "null"]},
                "source_key": {"type": ["string", "null"]},
                "pinned_by": {"type": "string", "description": "Only for a pin."},
                "reason": {"type": "string", "description": "Only for a pin."},
                "runner_ups": {"type": "array", "items": ref("LineageRunnerUp")},
            },
            ("value", "rule", "record_id", "system", "source_key", "runner_ups"),
        ),
    }


def _payload(event_type: str, properties: dict[str, Schema], required: tuple[str, ...]) -> Schema:
    return _object(
        {
            "id": {"type": "string", "description": "The golden record the event is about."},
            "entity": ref_placeholder("Entity"),
            "status": ref_placeholder("GoldenStatus"),
            "schema_version": {
                "type": "integer",
                "const": EVENT_VERSIONS[event_type],
                "description": "The version of this event type's schema the event follows.",
            },
            **properties,
        },
        ("id", "entity", "status", "schema_version", *required),
    )


def ref_placeholder(name: str) -> Schema:
    return {"$ref": f"#keystone/{name}"}


def event_definitions(ref: Ref) -> dict[str, Schema]:
    """Payloads and envelopes of every event type. Created and updated events carry the
    golden record's values: their payload is one schema per entity type, chosen by
    `entity`."""
    definitions: dict[str, Schema] = {}
    with_values = {
        GOLDEN_CREATED: (
            {"xrefs": {"type": "array", "items": ref_placeholder("XrefKey")}},
            ("values", "xrefs"),
        ),
        GOLDEN_UPDATED: (
            {
                "changed": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Attributes whose value changed.",
                },
                "previous_status": ref_placeholder("GoldenStatus"),
            },
            ("values", "changed", "previous_status"),
        ),
    }
    for event_type, (properties, required) in with_values.items():
        name = f"{_camel(event_type)}Payload"
        mapping = {}
        for entity in ENTITIES.values():
            per_entity = _payload(
                event_type,
                {**properties, "values": ref_placeholder(values_name(entity))},
                required,
            )
            per_entity["properties"]["entity"] = {"type": "string", "const": entity.name}
            definitions[_camel(entity.name, event_type, "payload")] = per_entity
            mapping[entity.name] = _camel(entity.name, event_type, "payload")
        definitions[name] = {
            "oneOf": [ref_placeholder(target) for target in mapping.values()],
            "discriminator": {
                "propertyName": "entity",
                "mapping": {entity: f"#keystone/{target}" for entity, target in mapping.items()},
            },
        }
    xref_maps = {
        "xrefs_before": ref_placeholder("XrefsByGolden"),
        "xrefs_after": ref_placeholder("XrefsByGolden"),
    }
    definitions["GoldenMergedPayload"] = _payload(
        GOLDEN_MERGED,
        {
            "survivor": {"type": "string"},
            "merged": {"type": "array", "items": {"type": "string"}},
            **xref_maps,
            "reason": {"type": "string"},
        },
        ("survivor", "merged", "xrefs_before", "xrefs_after", "reason"),
    )
    definitions["GoldenSplitPayload"] = _payload(
        GOLDEN_SPLIT,
        {
            "original": {"type": "string"},
            "created": {"type": "array", "items": {"type": "string"}},
            "redirected": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "IDs merged into the original earlier that now redirect to "
                "the new golden record (most of the records they stood for moved there).",
            },
            **xref_maps,
            "reason": {"type": "string"},
        },
        ("original", "created", "xrefs_before", "xrefs_after", "reason"),
    )
    definitions["XrefChangedPayload"] = _payload(
        XREF_CHANGED,
        {
            "record": ref_placeholder("XrefKey"),
            "from": {"type": ["string", "null"]},
            "to": {"type": "string"},
            **xref_maps,
        },
        ("record", "from", "to", "xrefs_before", "xrefs_after"),
    )
    envelopes = {}
    for event_type in EVENT_TYPES:
        name = _camel(event_type, "event")
        envelopes[event_type] = name
        definitions[name] = _object(
            {
                "id": {
                    "type": "integer",
                    "description": "Sequence number; also the de-duplication key.",
                },
                "type": {"type": "string", "const": event_type},
                "entity": ref_placeholder("Entity"),
                "golden_id": {"type": "string"},
                "payload": ref_placeholder(f"{_camel(event_type)}Payload"),
                "actor": {"type": "string"},
                "correlation_id": {
                    "type": "string",
                    "description": "The correlation ID of the request, file load or task that "
                    "caused the change (also the X-Correlation-ID header of its webhook "
                    "deliveries).",
                },
                "created_at": {"type": "string", "format": "date-time"},
            },
            ("id", "type", "entity", "golden_id", "payload", "actor", "correlation_id"),
            description=EVENT_DESCRIPTIONS[event_type],
        )
        definitions[name]["required"].append("created_at")
    definitions["Event"] = {
        "oneOf": [ref_placeholder(name) for name in envelopes.values()],
        "discriminator": {
            "propertyName": "type",
            "mapping": {event_type: f"#keystone/{n}" for event_type, n in envelopes.items()},
        },
    }
    return _resolve(definitions, ref)


def _resolve(node: Any, ref: Ref) -> Any:
    """Replace placeholder references (`#keystone/Name`) with `ref(Name)`."""
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith("#keystone/") and len(node) == 1:
            return ref(target.removeprefix("#keystone/"))
        return {
            key: (
                {k: ref(v.removeprefix("#keystone/"))["$ref"] for k, v in value.items()}
                if key == "mapping"
                else _resolve(value, ref)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_resolve(item, ref) for item in node]
    return node


def definitions(ref: Ref) -> dict[str, Schema]:
    """Every published definition, referencing each other through `ref(name)`."""
    found = shared_definitions(ref)
    for entity in ENTITIES.values():
        found.update(entity_definitions(entity, ref))
        found.update(input_definitions(entity, ref))
    found.update(event_definitions(ref))
    return found


def _local(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def event_schema(event_type: str) -> Schema:
    """The standalone JSON Schema (2020-12) of one event type at its current version."""
    version = EVENT_VERSIONS[event_type]
    defs = definitions(_local)
    envelope = _camel(event_type, "event")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:keystone:event:{event_type}:v{version}",
        "title": f"{event_type} v{version}",
        "description": EVENT_DESCRIPTIONS[event_type],
        "$ref": f"#/$defs/{envelope}",
        "$defs": _reachable(defs, envelope),
    }


def _reachable(defs: dict[str, Schema], root: str) -> dict[str, Schema]:
    """The definitions `root` needs, itself included."""
    seen: dict[str, Schema] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen[name] = defs[name]
        pending.extend(_refs(defs[name]))
    return dict(sorted(seen.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [
            value.removeprefix("#/$defs/")
            for key, value in node.items()
            if key == "$ref" and isinstance(value, str)
        ]
        for key, value in node.items():
            if key == "mapping":
                found += [v.removeprefix("#/$defs/") for v in value.values()]
            elif key != "$ref":
                found += _refs(value)
        return found
    if isinstance(node, list):
        return [name for item in node for name in _refs(item)]
    return []


def event_schemas() -> dict[str, Schema]:
    """Every event type's standalone JSON Schema, by type."""
    return {event_type: event_schema(event_type) for event_type in EVENT_TYPES}


def events_markdown() -> str:
    """docs/events.md: the event contracts as a reader needs them, generated from the
    schemas (`manage.py event_schemas --markdown > docs/events.md`; a test keeps it in step)."""
    schemas = event_schemas()
    lines = [
        "# Event contracts",
        "",
        "<!-- Generated by `python manage.py event_schemas --markdown > docs/events.md` from",
        "     mdm/contracts.py (which reads mdm/entities.py). Do not edit by hand. -->",
        "",
        "Every change of a golden record is written as an event in the same transaction (the",
        "outbox), served in sequence order by `GET /api/v1/events` and POSTed to webhook",
        "subscriptions. Each event type has a JSON Schema (2020-12) with a version, published",
        "at `GET /api/v1/events/schemas` and below; every event says which version it follows",
        "in `payload.schema_version`. The envelope is the same for all types: `id` (sequence",
        "number, the de-duplication key), `type`, `entity`, `golden_id`, `payload`, `actor`,",
        "`correlation_id`, `created_at`.",
        "",
        "## Compatibility rule",
        "",
        COMPATIBILITY_RULE,
        "",
        "| type | version | when |",
        "|---|---|---|",
        *(f"| `{t}` | {EVENT_VERSIONS[t]} | {EVENT_DESCRIPTIONS[t]} |" for t in EVENT_TYPES),
        "",
        "Golden record values in `golden.created` and `golden.updated` are typed per entity type",
        "(`CustomerValues`, `ProductValues`, …), chosen by `payload.entity`.",
    ]
    for event_type in EVENT_TYPES:
        lines += [
            "",
            f"## `{event_type}` (version {EVENT_VERSIONS[event_type]})",
            "",
            "```json",
            json.dumps(schemas[event_type], indent=2),
            "```",
        ]
    return "\n".join(lines) + "\n"
