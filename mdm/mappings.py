"""Source mappings: a source system's native payload → the canonical record ingest normalizes.

A mapping is data (JSON or YAML), declared per source system and entity type; this module is
the pure core over it: `compile_mapping` checks a spec once (every problem named with its field
and reason, `InvalidMapping`) and `CompiledMapping.apply` maps one payload, or raises
`UnmappableRecord` with the target, the source path and the reason — which ingest turns into a
rejection. No database, no Django: the same code serves the ingest path, `load_source
--mapping`, the API's preview and the steward's preview page.

The language (docs/mappings.md has the full page):

    {"fields": {
        "source_key": "Id",                                   # a path alone
        "name": {"path": "Account.Name"},                     # nested objects
        "email": {"path": "Contacts[0].Email"},               # list indexes (-1: the last)
        "kind": {"const": "organization"},                    # a constant
        "country": {"path": "Billing.Country", "map": {"Deutschland": "DE"},
                    "unmapped": "keep"},                       # value map: keep|blank|reject
        "address_line1": {"path": "Street", "split": {"separator": "\\n", "index": 0}},
        "name": {"concat": ["FirstName", "LastName"], "separator": " "},
        "date_of_birth": {"path": "Birthdate", "date": "%m/%d/%Y"},
        "source_updated_at": {"path": "updated", "datetime": "unix"},
        "region": {"path": "State", "default": "n/a", "required": true}}}

One rule per target. Targets are the entity's attributes and reference columns, `source_key`
(required), `source_updated_at` and `deleted`; rules apply in that (declaration) order, so
the first failing one, which a rejection names, does not depend on the spec's key order.
Each rule's steps run in a fixed order: its source (path, const or concat), then split, map,
date / datetime, default, required.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from os import PathLike
from typing import Any

import yaml

from mdm.entities import EntityType, get_entity
from mdm.errors import MdmError

META_TARGETS = ("source_key", "source_updated_at", "deleted")
SPEC_KEYS = frozenset({"fields", "system", "entity", "description"})
SOURCE_KEYS = ("path", "const", "concat")
RULE_KEYS = frozenset(
    {*SOURCE_KEYS, "separator", "split", "map", "unmapped", "date", "datetime", "default"}
    | {"required"}
)
SPLIT_KEYS = frozenset({"separator", "index", "maxsplit"})
UNMAPPED = ("keep", "blank", "reject")
SPECIAL_DATE_FORMATS = ("iso",)
SPECIAL_DATETIME_FORMATS = ("iso", "unix", "unix_ms")
# strptime directives a format may use (Python's documented set, platform extensions left out)
_DIRECTIVES = frozenset("aAwdbBmyYHIpMSfzZjUWcxXGuV%")
_DIRECTIVE = re.compile(r"%(.)", re.DOTALL)
_PROBE = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
MAX_PATH_LENGTH = 500


class InvalidMapping(MdmError):
    """A mapping that cannot be saved or used: `problems` lists (field, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {reason}" for where, reason in problems))


class UnmappableRecord(Exception):
    """A payload this mapping cannot map: which target, from which source path, and why."""

    def __init__(self, target: str, path: str, reason: str) -> None:
        self.target, self.path, self.reason = target, path, reason
        super().__init__(
            f"mapping {target} from {path}: {reason}" if path else f"{target}: {reason}"
        )


# --- paths ------------------------------------------------------------------------------------
Segment = str | int  # a field name or a list index


@dataclass(frozen=True)
class Path:
    text: str
    segments: tuple[Segment, ...]

    @property
    def root(self) -> str:
        first = self.segments[0]
        assert isinstance(first, str)
        return first

    def resolve(self, payload: Any, target: str) -> Any:
        """The value at this path: None where a field or list item is absent (or null);
        UnmappableRecord where the payload's shape differs from the path's (a field of a
        list, an index of an object, an object or list at the end)."""
        value = payload
        walked = ""
        for segment in self.segments:
            if value is None:
                return None
            if isinstance(segment, str):
                if not isinstance(value, Mapping):
                    raise UnmappableRecord(
                        target, self.text, f"expected an object at {walked}, got {_kind(value)}"
                    )
                value = value.get(segment)
                walked = f"{walked}.{segment}" if walked else segment
            else:
                if not isinstance(value, list):
                    raise UnmappableRecord(
                        target, self.text, f"expected a list at {walked}, got {_kind(value)}"
                    )
                value = value[segment] if -len(value) <= segment < len(value) else None
                walked = f"{walked}[{segment}]"
        if isinstance(value, Mapping | list):
            raise UnmappableRecord(
                target, self.text, f"expected a single value, got {_kind(value)}"
            )
        return value


_NAME = re.compile(r"[^.\[\]\"\s][^.\[\]\"]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')


def parse_path(text: Any) -> Path:
    """`a.b[0]["c.d"]`: field names joined by dots, list indexes in brackets, a name with
    dots or brackets in quotes and brackets. Raises ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a path is a non-empty text")
    if len(text) > MAX_PATH_LENGTH:
        raise ValueError(f"a path is at most {MAX_PATH_LENGTH} characters")
    segments: list[Segment] = []
    position = 0
    while position < len(text):
        if text.startswith("[", position):
            if index := _INDEX.match(text, position):
                segments.append(int(index.group(1)))
                position = index.end()
            elif quoted := _QUOTED.match(text, position):
                segments.append(re.sub(r"\\(.)", r"\1", quoted.group(1)))
                position = quoted.end()
            else:
                raise ValueError(
                    f"bad bracket at character {position + 1}: use [0] for a list index "
                    'or ["name"] for a field name'
                )
            continue
        if segments:
            if not text.startswith(".", position):
                raise ValueError(f"expected '.' or '[' at character {position + 1}")
            position += 1
        name = _NAME.match(text, position)
        if name is None:
            raise ValueError(f"empty field name at character {position + 1}")
        segments.append(name.group().rstrip())
        position = name.end()
    if not isinstance(segments[0], str):
        raise ValueError("a path starts with a field name (the payload is an object)")
    return Path(text, tuple(segments))


# --- rules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    target: str
    path: Path | None = None
    const: Any = None
    concat: tuple[Path, ...] = ()
    separator: str = " "
    split: tuple[str, int, int] | None = None  # separator, index, maxsplit (-1: all)
    value_map: Mapping[str, Any] | None = None
    unmapped: str = "keep"
    date_format: str = ""
    datetime_format: str = ""
    default: Any = None
    required: bool = False

    @property
    def source(self) -> str:
        if self.path is not None:
            return self.path.text
        if self.concat:
            return " + ".join(p.text for p in self.concat)
        return ""

    def apply(self, payload: Mapping[str, Any]) -> Any:
        if self.path is not None:
            value = self.path.resolve(payload, self.target)
        elif self.concat:
            parts = [_text(p.resolve(payload, self.target)) for p in self.concat]
            value = self.separator.join(p for p in parts if p.strip()) or None
        else:
            value = self.const
        if not _blank(value):
            value = self._transform(value)
        if _blank(value):
            value = self.default
        if self.required and _blank(value):
            raise UnmappableRecord(self.target, self.source, "required, but missing or blank")
        return value

    def _transform(self, value: Any) -> Any:
        if self.split is not None:
            separator, index, maxsplit = self.split
            parts = _text(value).split(separator, maxsplit)
            value = parts[index] if -len(parts) <= index < len(parts) else None
            if _blank(value):
                return None
        if self.value_map is not None:
            key = _text(value)
            if key in self.value_map:
                value = self.value_map[key]
            elif self.unmapped == "blank":
                value = None
            elif self.unmapped == "reject":
                raise UnmappableRecord(self.target, self.source, f"{key!r} is not in the value map")
            if _blank(value):
                return None
        if self.date_format:
            value = self._date(value)
        elif self.datetime_format:
            value = self._datetime(value)
        return value

    def _date(self, value: Any) -> str:
        text = _text(value).strip()
        try:
            if self.date_format == "iso":
                return date.fromisoformat(text).isoformat()
            return datetime.strptime(text, self.date_format).date().isoformat()
        except ValueError:
            raise UnmappableRecord(
                self.target,
                self.source,
                f"{text!r} does not match the date format {self.date_format!r}",
            ) from None

    def _datetime(self, value: Any) -> str:
        text = _text(value).strip()
        try:
            if self.datetime_format in ("unix", "unix_ms"):
                seconds = float(text) / (1000 if self.datetime_format == "unix_ms" else 1)
                return datetime.fromtimestamp(seconds, UTC).isoformat()
            if self.datetime_format == "iso":
                return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
            return datetime.strptime(text, self.datetime_format).isoformat()
        except (ValueError, OverflowError, OSError):
            raise UnmappableRecord(
                self.target,
                self.source,
                f"{text!r} does not match the date-time format {self.datetime_format!r}",
            ) from None


@dataclass(frozen=True)
class CompiledMapping:
    """A checked mapping for one entity type, ready to apply to payloads."""

    entity_type: str
    rules: tuple[Rule, ...]
    spec: Mapping[str, Any] = field(repr=False)
    version: int | None = None

    @property
    def read_roots(self) -> frozenset[str]:
        """The payload's top-level fields some rule reads (the others are kept as extra)."""
        paths = [r.path for r in self.rules if r.path] + [p for r in self.rules for p in r.concat]
        return frozenset(p.root for p in paths if p is not None)

    @property
    def source_key_rule(self) -> Rule:
        return next(r for r in self.rules if r.target == "source_key")

    def apply(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical record for `payload` (blank targets left out), or UnmappableRecord."""
        mapped: dict[str, Any] = {}
        for rule in self.rules:
            value = rule.apply(payload)
            if not _blank(value):
                mapped[rule.target] = value
        return mapped

    def source_key_of(self, payload: Any) -> str:
        """The payload's source key as far as it can be read (for a rejection row), else ""."""
        if not isinstance(payload, Mapping):
            return ""
        try:
            return _text(self.source_key_rule.apply(payload)).strip()
        except UnmappableRecord:
            return ""


def read_mapping_file(path: PathLike[str] | str) -> Any:
    """The spec in a .json, .yaml or .yml file (not yet checked: `compile_mapping` does)."""
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise InvalidMapping([("file", f"{name}: a mapping file is .json, .yaml or .yml")])
    try:
        with open(name, encoding="utf-8") as handle:
            if suffix == ".json":
                return json.load(handle)
            return yaml.safe_load(handle)
    except OSError as error:
        raise InvalidMapping([("file", f"{name}: {error.strerror or error}")]) from None
    except (ValueError, yaml.YAMLError) as error:
        raise InvalidMapping(
            [("file", f"{name}: not valid {suffix[1:].upper()}: {error}")]
        ) from None


def compile_mapping(
    spec: Any, *, entity_type: str, version: int | None = None, system: str | None = None
) -> CompiledMapping:
    """Check `spec` against the entity's declaration; raise InvalidMapping listing every
    problem (field and reason), else return the compiled mapping. When the spec names its
    `system` or `entity`, they must be the ones it is used for."""
    entity = get_entity(entity_type)
    problems: list[tuple[str, str]] = []
    if not isinstance(spec, Mapping):
        raise InvalidMapping([("mapping", f"expected an object, got {_kind(spec)}")])
    problems.extend(_unstorable(spec, ""))
    if problems:
        raise InvalidMapping(problems)
    for key in sorted(set(spec) - SPEC_KEYS):
        problems.append((str(key), f"unknown key (allowed: {', '.join(sorted(SPEC_KEYS))})"))
    if spec.get("entity") not in (None, entity.name):
        problems.append(("entity", f"the mapping is for {spec['entity']!r}, not {entity.name!r}"))
    if system is not None and spec.get("system") not in (None, system):
        problems.append(("system", f"the mapping is for {spec['system']!r}, not {system!r}"))
    fields = spec.get("fields")
    rules: list[Rule] = []
    if not isinstance(fields, Mapping) or not fields:
        problems.append(("fields", "an object of target attribute → rule, not empty"))
    else:
        targets = _targets(entity)
        for target, rule_spec in fields.items():
            where = f"fields.{target}"
            if target not in targets:
                problems.append(
                    (where, f"unknown target attribute for {entity.name} "
                            f"(allowed: {', '.join(targets)})")
                )  # fmt: skip
                continue
            rule = _compile_rule(str(target), rule_spec, where, problems)
            if rule is not None:
                rules.append(rule)
        if "source_key" not in fields:
            problems.append(("fields.source_key", "required: which field holds the record's key"))
    if problems:
        raise InvalidMapping(problems)
    order = {target: n for n, target in enumerate(_targets(entity))}
    rules.sort(key=lambda rule: order[rule.target])  # not the spec's key order: JSONB drops it
    return CompiledMapping(
        entity_type=entity.name, rules=tuple(rules), spec=dict(spec), version=version
    )


def in_target_order(spec: Mapping[str, Any], entity_type: str) -> dict[str, Any]:
    """`spec` with its fields in the order rules apply (the entity's declaration order), for
    showing a stored mapping: PostgreSQL's JSONB keeps no key order."""
    fields = spec.get("fields")
    if not isinstance(fields, Mapping):
        return dict(spec)
    order = {target: n for n, target in enumerate(_targets(get_entity(entity_type)))}
    ordered = dict(sorted(fields.items(), key=lambda item: order.get(str(item[0]), len(order))))
    return {**spec, "fields": ordered}


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_SPEC_DEPTH = 8


def _unstorable(value: Any, where: str, depth: int = 0) -> list[tuple[str, str]]:
    """Text a database cannot store (NUL, lone surrogates) or nesting no mapping needs."""
    if depth > MAX_SPEC_DEPTH:
        return [(where or "mapping", f"nested deeper than {MAX_SPEC_DEPTH} levels")]
    if isinstance(value, str):
        return (
            [(where, "contains a NUL character or a lone surrogate")]
            if _UNSTORABLE.search(value)
            else []
        )
    if isinstance(value, Mapping):
        return [
            problem
            for key, inner in value.items()
            for inside in [f"{where}.{key}" if where else str(key)]
            for problem in _unstorable(str(key), inside, depth + 1)
            + _unstorable(inner, inside, depth + 1)
        ][:1]
    if isinstance(value, list):
        return [
            problem
            for n, inner in enumerate(value)
            for problem in _unstorable(inner, f"{where}[{n}]", depth + 1)
        ][:1]
    return []


def _targets(entity: EntityType) -> tuple[str, ...]:
    return (*META_TARGETS, *entity.attribute_names, *entity.reference_columns)


def _compile_rule(
    target: str, spec: Any, where: str, problems: list[tuple[str, str]]
) -> Rule | None:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        problems.append((where, f"expected a path or an object, got {_kind(spec)}"))
        return None
    before = len(problems)
    for key in sorted(set(spec) - RULE_KEYS):
        problems.append(
            (f"{where}.{key}", f"unknown transform (allowed: {', '.join(sorted(RULE_KEYS))})")
        )
    sources = [key for key in SOURCE_KEYS if key in spec]
    if len(sources) != 1:
        problems.append((where, "exactly one of path, const or concat"))
    options: dict[str, Any] = {"target": target}
    if "path" in spec:
        options["path"] = _path(spec["path"], f"{where}.path", problems)
    if "const" in spec:
        if isinstance(spec["const"], Mapping | list):
            problems.append((f"{where}.const", "a single value (text, number, true/false)"))
        options["const"] = spec["const"]
    if "concat" in spec:
        items = spec["concat"]
        if not isinstance(items, list) or len(items) < 2:
            problems.append((f"{where}.concat", "a list of two or more paths"))
        else:
            options["concat"] = tuple(
                _path(item, f"{where}.concat[{n}]", problems) for n, item in enumerate(items)
            )
    if "separator" in spec:
        if "concat" not in spec:
            problems.append((f"{where}.separator", "only with concat (split has its own)"))
        elif not isinstance(spec["separator"], str):
            problems.append((f"{where}.separator", "a text"))
        else:
            options["separator"] = spec["separator"]
    if "split" in spec:
        options["split"] = _split(spec["split"], f"{where}.split", problems)
    if "map" in spec:
        value_map = spec["map"]
        if not isinstance(value_map, Mapping) or any(
            isinstance(v, Mapping | list) for v in value_map.values()
        ):
            problems.append((f"{where}.map", "an object of source value → canonical value"))
        else:
            options["value_map"] = {str(k): v for k, v in value_map.items()}
    if "unmapped" in spec:
        if "map" not in spec:
            problems.append((f"{where}.unmapped", "only with map"))
        elif spec["unmapped"] not in UNMAPPED:
            problems.append((f"{where}.unmapped", f"one of {', '.join(UNMAPPED)}"))
        else:
            options["unmapped"] = spec["unmapped"]
    if "date" in spec and "datetime" in spec:
        problems.append((where, "date or datetime, not both"))
    if "date" in spec:
        options["date_format"] = _format(
            spec["date"], f"{where}.date", SPECIAL_DATE_FORMATS, problems
        )
    if "datetime" in spec:
        options["datetime_format"] = _format(
            spec["datetime"], f"{where}.datetime", SPECIAL_DATETIME_FORMATS, problems
        )
    if "default" in spec:
        if isinstance(spec["default"], Mapping | list):
            problems.append((f"{where}.default", "a single value (text, number, true/false)"))
        options["default"] = spec["default"]
    if "required" in spec:
        if not isinstance(spec["required"], bool):
            problems.append((f"{where}.required", "true or false"))
        options["required"] = spec["required"] is True
    if target == "source_key":
        options["required"] = True
    if len(problems) > before:
        return None
    return Rule(**options)


def _path(text: Any, where: str, problems: list[tuple[str, str]]) -> Path | None:
    try:
        return parse_path(text)
    except ValueError as error:
        problems.append((where, f"bad path {text!r}: {error}"))
        return None


def _split(spec: Any, where: str, problems: list[tuple[str, str]]) -> tuple[str, int, int] | None:
    if (
        not isinstance(spec, Mapping)
        or not isinstance(spec.get("separator"), str)
        or not spec["separator"]
    ):
        problems.append((where, 'an object {"separator": text, "index": n}'))
        return None
    for key in sorted(set(spec) - SPLIT_KEYS):
        problems.append((f"{where}.{key}", "unknown key (allowed: index, maxsplit, separator)"))
    index, maxsplit = spec.get("index", 0), spec.get("maxsplit", -1)
    for name, value in (("index", index), ("maxsplit", maxsplit)):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append((f"{where}.{name}", "an integer"))
            return None
    return spec["separator"], index, maxsplit


def _format(
    value: Any, where: str, special: tuple[str, ...], problems: list[tuple[str, str]]
) -> str:
    """A strptime format (checked: known directives only, and it reads back what it writes)
    or one of the named formats."""
    if not isinstance(value, str) or not value:
        problems.append(
            (where, f"a format string such as '%d.%m.%Y', or one of {', '.join(special)}")
        )
        return ""
    if value in special:
        return value
    directives = _DIRECTIVE.findall(value)
    unknown = sorted({d for d in directives if d not in _DIRECTIVES})
    if value.endswith("%") and not value.endswith("%%"):
        unknown.append("(a lone % at the end)")
    if unknown:
        problems.append(
            (where, f"bad date format {value!r}: unknown directive {', '.join(unknown)}")
        )
        return ""
    if not [d for d in directives if d != "%"]:
        problems.append((where, f"bad date format {value!r}: no directive such as %Y, %m, %d"))
        return ""
    try:
        datetime.strptime(_PROBE.strftime(value), value)
    except ValueError as error:
        problems.append((where, f"bad date format {value!r}: {error}"))
        return ""
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def mapping_definitions(ref: Any) -> dict[str, dict[str, Any]]:
    """The mapping language as JSON Schema definitions (published as API components)."""
    scalar = {"type": ["string", "number", "boolean", "null"]}
    return {
        "MappingSpec": {
            "type": "object",
            "description": "A source mapping: target attribute → rule (docs/mappings.md).",
            "properties": {
                "system": {"type": "string", "description": "Optional: the system it is for."},
                "entity": ref("Entity"),
                "description": {"type": "string"},
                "fields": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": ref("MappingRule"),
                    "description": "source_key (required), the entity's attributes and "
                    "reference columns, source_updated_at, deleted.",
                },
            },
            "required": ["fields"],
            "additionalProperties": False,
        },
        "MappingRule": {
            "oneOf": [
                {"type": "string", "description": "A path alone: `a.b[0].c`."},
                ref("MappingRuleObject"),
            ]
        },
        "MappingRuleObject": {
            "type": "object",
            "description": "One of path, const or concat; then split, map, date or datetime, "
            "default, required, in that order.",
            "properties": {
                "path": {"type": "string", "description": '`a.b[0].c`, `a["odd.name"]`'},
                "const": scalar,
                "concat": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "separator": {"type": "string", "description": "Between concat parts."},
                "split": ref("MappingSplit"),
                "map": {"type": "object", "additionalProperties": scalar},
                "unmapped": {"type": "string", "enum": list(UNMAPPED)},
                "date": {"type": "string", "description": "strptime format, or `iso`."},
                "datetime": {
                    "type": "string",
                    "description": "strptime format, or `iso`, `unix`, `unix_ms`.",
                },
                "default": scalar,
                "required": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "MappingSplit": {
            "type": "object",
            "properties": {
                "separator": {"type": "string"},
                "index": {"type": "integer"},
                "maxsplit": {"type": "integer"},
            },
            "required": ["separator"],
            "additionalProperties": False,
        },
        "MappedRecord": {
            "type": "object",
            "description": "What a mapping made of a payload: target → value.",
            "additionalProperties": scalar,
        },
    }
