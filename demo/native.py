"""The demo's source files in each system's native shape, made from the canonical rows by
running that system's shipped mapping (demo/mappings/) backwards.

One declaration drives both directions: `native_record` writes each canonical value where the
mapping reads it (nested objects, list items, a value map's source code, split parts joined,
a date-time in the mapping's format), so loading the native file through the mapping gives
ingest the very record the canonical CSV gives — the demo's golden records are the same (a
test checks every row). The native records also carry a few fields no rule reads, as real
exports do (Salesforce's `attributes`, Stripe's `object`); ingest keeps them as extra.

Pure Python: no Django, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mdm.mappings import Path as SourcePath
from mdm.mappings import Rule, compile_mapping

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

# Fields no rule reads, as each platform's export carries them.
_SALESFORCE_TYPES = {"customer": "Account", "product": "Product2", "contract": "Contract"}
_STRIPE_OBJECTS = {
    "customer": "customer",
    "product": "product",
    "contract": "subscription",
    "entitlement": "subscription_item",
}


def mapping_name(system: str, entity: str) -> str:
    return f"{system}__{entity}.yaml"


def mapping_spec(system: str, entity: str) -> dict[str, Any]:
    """The shipped mapping of `system` for `entity`, as data."""
    text = (MAPPINGS_DIR / mapping_name(system, entity)).read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    assert isinstance(spec, dict)
    return spec


def decoration(system: str, entity: str, key: str) -> dict[str, Any]:
    if system == "crm":
        kind = _SALESFORCE_TYPES[entity]
        return {"attributes": {"type": kind, "url": f"/services/data/v59.0/sobjects/{kind}/{key}"}}
    if system == "billing":
        return {"object": _STRIPE_OBJECTS[entity], "livemode": False}
    if system == "erp":
        return {
            "recordType": {"customer": "customer", "product": "inventoryItem"}.get(
                entity, "salesOrder"
            )
        }
    return {}


class NativeWriter:
    """Writes canonical rows of one system and entity in the system's native shape."""

    def __init__(self, system: str, entity: str) -> None:
        self.system, self.entity = system, entity
        self.mapping = compile_mapping(mapping_spec(system, entity), entity_type=entity)
        splits: dict[str, list[Rule]] = {}
        self.plain: list[Rule] = []
        for rule in self.mapping.rules:
            if rule.path is None:
                raise ValueError(f"{system}/{entity}: only path rules can be written back")
            if rule.split is not None:
                splits.setdefault(rule.path.text, []).append(rule)
            else:
                self.plain.append(rule)
        self.splits = list(splits.values())

    def record(self, cells: dict[str, str]) -> dict[str, Any]:
        """The native record for one row of canonical cells (blank cells are left out)."""
        native: dict[str, Any] = decoration(self.system, self.entity, cells.get("source_key", ""))
        for rule in self.plain:
            value = cells.get(rule.target, "")
            if value == "":
                continue
            assert rule.path is not None
            _put(native, rule.path, _native_value(rule, value))
        for rules in self.splits:
            ordered = sorted(rules, key=lambda r: r.split[1] if r.split else 0)
            separator = ordered[0].split[0] if ordered[0].split else "\n"
            parts = [cells.get(r.target, "") for r in ordered]
            while parts and parts[-1] == "":
                parts.pop()
            if parts:
                assert ordered[0].path is not None
                _put(native, ordered[0].path, separator.join(parts))
        return native


def _native_value(rule: Rule, value: str) -> Any:
    if rule.value_map is not None:
        codes = {canonical: code for code, canonical in rule.value_map.items()}
        if value in codes:
            code = codes[value]
            return {"true": True, "false": False}.get(code, code)
    if rule.datetime_format:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        if rule.datetime_format == "unix":
            return int(moment.timestamp())
        if rule.datetime_format == "iso":
            return moment.isoformat()
        if "%z" not in rule.datetime_format:
            moment = moment.replace(tzinfo=None)  # naive: ingest reads it as UTC
        return moment.strftime(rule.datetime_format)
    return value


def _put(native: dict[str, Any], path: SourcePath, value: Any) -> None:
    """Set `value` at `path`, making the objects and list items on the way."""
    node: Any = native
    segments = path.segments
    for segment, following in zip(segments, segments[1:], strict=False):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(segment, int):
            while len(node) <= segment:
                node.append(None)
            if node[segment] is None:
                node[segment] = empty
            node = node[segment]
        else:
            node = node.setdefault(segment, empty)
    last = segments[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
