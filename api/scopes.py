"""Token scopes: what an integration's token may read and write, and the one function that
withholds sensitive attributes from readers without `golden:read_sensitive`.

Each API view declares the scope it needs (`required_scope`); `api.permissions.KeystoneAccess`
checks it. Stewards and auditors (people signed in with a role) are not limited by scopes.

`golden:read_sensitive` is not an endpoint's scope but a reading right: with it, the
attributes `mdm.entities` declares sensitive (date of birth, tax ID; a person's e-mail and
phone) are included wherever golden values appear — golden records and their history, event
payloads (feed and webhooks), match probe explanations; without it they are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.exceptions import PermissionDenied

from mdm.entities import EntityType, get_entity

XREF_READ = "xref:read"
GOLDEN_READ = "golden:read"
GOLDEN_READ_SENSITIVE = "golden:read_sensitive"
SOURCES_WRITE = "sources:write"
EVENTS_READ = "events:read"
MATCH_PROBE = "match:probe"
WEBHOOKS_MANAGE = "webhooks:manage"
MAPPINGS_MANAGE = "mappings:manage"
# What a view declares when any token may call it: it reads and writes nothing (404 routes).
NO_SCOPE = ""

SCOPES: dict[str, str] = {
    XREF_READ: "look up cross-references: single, batch, as of a moment",
    GOLDEN_READ: "read golden records, search them, read their history",
    GOLDEN_READ_SENSITIVE: "include sensitive attributes (date of birth, tax ID, a person's "
    "e-mail and phone) in golden values, events, webhooks and probe explanations",
    SOURCES_WRITE: "write (upsert, tombstone) source records of the token's own system",
    EVENTS_READ: "read the events feed",
    MATCH_PROBE: "ask whether a record already exists (match probe)",
    WEBHOOKS_MANAGE: "manage the token's own webhook subscriptions (and so receive events)",
    MAPPINGS_MANAGE: "read, preview and add versions of the source mappings of the token's "
    "own system",
}
# What `create_integration` grants unless told otherwise, and what tokens issued before scopes
# existed were given (migration api.0003): everything except the sensitive attributes and
# changing the system's own mapping (a steward's job unless granted).
DEFAULT_SCOPES: tuple[str, ...] = tuple(
    s for s in SCOPES if s not in (GOLDEN_READ_SENSITIVE, MAPPINGS_MANAGE)
)


def default_scopes() -> list[str]:
    return list(DEFAULT_SCOPES)


def reads_sensitive(request) -> bool:
    """Whether this request's reader sees sensitive attributes: a token with
    `golden:read_sensitive`, or a signed-in steward or auditor. Unknown: no."""
    from api.models import IntegrationToken

    if request is None:
        return False
    if isinstance(request.auth, IntegrationToken):
        return GOLDEN_READ_SENSITIVE in request.auth.scope_set
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def sensitive_on_every_record(entity: EntityType) -> frozenset[str]:
    """The attributes sensitive whatever the record (an organization's too): a date of birth,
    a tax ID — and a person's e-mail and phone when the entity has no organizations."""
    if entity.organization is None:
        return entity.sensitive_attributes
    marker, organization = entity.organization
    return entity.withheld({marker: organization})


def refuse_sensitive_query(request, entity_type: str, names: Iterable[str], *, asking: str) -> None:
    """A query by a value the reader may not see is an oracle for it (a filter's hits, a
    probe's "same date of birth"): without `golden:read_sensitive`, asking by an attribute
    sensitive on every record is refused — 403 naming the attributes. (Asking by one sensitive
    only on a person's record finds organizations only: `only_organizations`.)"""
    if reads_sensitive(request):
        return
    refused = sorted(sensitive_on_every_record(get_entity(entity_type)) & set(names))
    if refused:
        raise PermissionDenied(
            f"{asking} by {', '.join(refused)} needs the {GOLDEN_READ_SENSITIVE} scope."
        )


def only_organizations(request, entity_type: str, names: Iterable[str]) -> tuple[str, str] | None:
    """When a query asks by an attribute sensitive only on a person's record (e-mail, phone)
    and the reader may not see it there: the (attribute, value) every answer must hold — an
    organization's — so the query is no oracle for a person's value. Else None."""
    if reads_sensitive(request):
        return None
    entity = get_entity(entity_type)
    personal = (entity.sensitive_attributes - sensitive_on_every_record(entity)) & set(names)
    return entity.organization if personal else None


def subscription_reads_sensitive(subscription) -> bool:
    """Whether a webhook subscription's deliveries carry sensitive attributes: a steward's
    (no owner) do; an integration's only while one of its live tokens has
    `golden:read_sensitive` — decided at each delivery, so revoking the scope (or the token)
    takes effect for the next one."""
    from api.models import IntegrationToken

    if subscription.owner_id is None:
        return True
    granted = IntegrationToken.objects.filter(
        source_system_id=subscription.owner_id, revoked=False
    ).values_list("scopes", flat=True)
    return any(GOLDEN_READ_SENSITIVE in scopes for scopes in granted)


def withhold_sensitive(
    entity_type: str, fields: Mapping[str, Any], *, values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`fields` without the sensitive attributes of a record with survived `values` (by
    default `fields` itself). `fields` is keyed by attribute — golden values, lineage — or by
    a match column derived from one (`tax_id_key`, `email_domain`), as probe explanations are.
    """
    entity = get_entity(entity_type)
    withheld = entity.withheld(fields if values is None else values)
    if not withheld:
        return dict(fields)
    return {name: v for name, v in fields.items() if _attribute_of(name, entity) not in withheld}


def _attribute_of(name: str, entity) -> str:
    """The attribute a values key or a match column comes from (`email_domain` → `email`)."""
    if name in entity.attribute_names:
        return name
    prefixes = [a for a in entity.sensitive_attributes if name.startswith(f"{a}_")]
    return max(prefixes, key=len) if prefixes else name


def visible_event_payload(
    entity_type: str, payload: Mapping[str, Any], *, sensitive: bool
) -> Mapping[str, Any]:
    """An event's payload as this reader may see it: its golden `values` withheld, and the
    withheld attributes left out of `changed` too (that a person's e-mail changed is theirs)."""
    if sensitive or not isinstance(payload.get("values"), Mapping):
        return payload
    values = payload["values"]
    visible = {**payload, "values": withhold_sensitive(entity_type, values)}
    if isinstance(payload.get("changed"), list):
        withheld = get_entity(entity_type).withheld(values)
        visible["changed"] = [name for name in payload["changed"] if name not in withheld]
    return visible


def visible_explanation(
    entity_type: str, explanation: Mapping[str, dict], *, sensitive: bool
) -> Mapping[str, dict]:
    """A probe candidate's explanation as this reader may see it: how each comparison went
    (level, weight) stays, but the compared values of sensitive attributes are null — both
    sides; the candidate's kind is unknown here, so they count as a person's."""
    if sensitive:
        return explanation
    shown = withhold_sensitive(entity_type, explanation, values={})
    return {
        column: entry if column in shown else {**entry, "left": None, "right": None}
        for column, entry in explanation.items()
    }
