"""Entity declarations: the single source of truth for every entity type.

Each entity declares its canonical attributes (name, kind, default survivorship), its
references to other entities (by source key in the same source system) and the prefix of its
golden IDs. Validation, normalization, survivorship, admin, export and later the API and
matching read these declarations; adding an attribute touches this file only.

An attribute's *kind* names its normalizer in `mdm.normalize.NORMALIZERS`.

Sensitive attributes (personal data) are declared here too: an integration reads them only
with the `golden:read_sensitive` scope. `ALWAYS` is sensitive on every record of the entity
(a date of birth, a tax ID); `PERSONAL` only on a person's record — one whose
`EntityType.organization` marker does not hold (for customers: any kind but "organization",
an unknown kind included) — so an organization's switchboard e-mail and phone stay readable,
a person's do not. `EntityType.withheld(values)` is the one place that decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

SOURCE_PRIORITY = "source_priority"
MOST_RECENT = "most_recent"
MOST_FREQUENT = "most_frequent"
LONGEST = "longest"
STRATEGIES = (SOURCE_PRIORITY, MOST_RECENT, MOST_FREQUENT, LONGEST)
ALWAYS, PERSONAL = "always", "personal"  # Attribute.sensitive
STRATEGY_LABELS = {
    SOURCE_PRIORITY: "Source priority",
    MOST_RECENT: "Most recent",
    MOST_FREQUENT: "Most frequent",
    LONGEST: "Longest / most complete",
}


# Values sources write where they have none: dropped at normalization (`mdm.normalize`), so a
# placeholder is no value, kept only in the raw payload, and never evidence for matching.
# Compared case-insensitively with whitespace collapsed, for attributes of these kinds only
# (a quantity of 0 or a choice "none" is a value).
PLACEHOLDER_KINDS = frozenset(
    ("text", "name", "person_name", "email", "phone", "website", "address", "city")
    + ("postal_code", "tax_id", "date")
)
NO_VALUE = frozenset(
    ("n/a", "n.a.", "n.a", "n/a.", "none", "null", "nil", "unknown", "unkown", "not known")
    + ("not available", "not applicable", "tbd", "tba", "-", "--", "---", ".", "?", "??")
    + ("x", "xx", "xxx", "xxxx", "#n/a", "(blank)", "blank", "empty", "no data", "no phone")
    + ("no email", "no e-mail", "no website", "no address")
)
# Per kind, more placeholders: an e-mail form ending in "@" matches any domain ("noreply@").
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "email": frozenset(
        ("none@none.com", "no@email.com", "noemail@noemail.com", "noemail@email.com")
        + ("test@test.com", "unknown@unknown.com", "na@na.com", "n/a@n/a.com")
        + ("email@email.com", "x@x.com", "a@a.com", "none@example.com", "test@example.com")
        + ("noreply@", "no-reply@", "donotreply@", "do-not-reply@", "noemail@", "nomail@")
    ),
    "website": frozenset(
        ("www", "http://", "https://", "example.com", "www.example.com", "http://example.com")
    ),
}
# Phones and tax IDs whose digits are one digit repeated ("000-000-0000", "+1 999 999 9999",
# "DE000000000"), checked on the last `PLACEHOLDER_DIGITS` digits so a country code in front
# does not hide them, and phones that count up ("123-456-7890").
PLACEHOLDER_DIGITS = 7
COUNTING_DIGITS = "1234567890"


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str
    survivorship: str = SOURCE_PRIORITY
    choices: tuple[str, ...] = ()
    label: str = ""
    sensitive: str = ""  # ALWAYS, PERSONAL or "" (see the module docstring)

    @property
    def verbose_name(self) -> str:
        return self.label or self.name.replace("_", " ")


@dataclass(frozen=True)
class Reference:
    """A pointer from one source record to another entity's source record in the same system.

    `column` is the input column (e.g. ``customer_key``); `relation` is the field on the golden
    record that the survived reference resolves to through the cross-reference.
    """

    column: str
    target: str
    relation: str
    survivorship: str = SOURCE_PRIORITY
    # What the referenced golden record calls the records pointing at it ("contracts").
    inverse_label: str = ""


@dataclass(frozen=True)
class HardIdentifier:
    """An attribute that identifies the thing when present and valid (`mdm.identifiers`).

    Two records whose identifiers of one `kind` are both present, valid and different are a
    cannot-link: matching never puts them in one golden record. `kind` names the rule in
    `mdm.identifiers` (normalization, validation, check digit); `country` is the attribute
    that scopes a bare number ("301435057" with country GB is GB301435057); with
    `per_source_system` the identifier only means something within one source system (a
    contract number), so only records of the same system conflict. `label` names the kind
    for reasons ("conflicting tax IDs")."""

    kind: str
    attribute: str
    label: str
    country: str = ""
    per_source_system: bool = False


@dataclass(frozen=True)
class SurvivorshipGroup:
    """Attributes that survive together from ONE source record (the address block; an
    identifier with its country): the record that wins the group's `lead` attribute gives
    every attribute of the group, empty ones included, so a golden record never shows a
    street from one record and a country from another."""

    name: str
    attributes: tuple[str, ...]
    # Attributes that come from the group's record when it fills them, else by their own rule
    # (a tax ID goes with the country of its record's address).
    follows: tuple[str, ...] = ()

    @property
    def lead(self) -> str:
        return self.attributes[0]


@dataclass(frozen=True)
class Stake:
    """What hangs off a golden record and raises the cost of a wrong decision about it: the
    review queue's business impact (`matching.selectors`). Active golden records of
    `referrer` whose `relation` points at the record count (only those whose attribute
    `only[0]` is `only[1]`), or their `total` attribute is summed. A stake adds
    ``weight · ln(1 + amount / scale)`` to a candidate's impact."""

    label: str
    referrer: str
    relation: str
    total: str = ""
    only: tuple[str, str] | None = None
    weight: float = 1.0
    scale: float = 1.0

    @property
    def name(self) -> str:
        return self.label.replace(" ", "_")


ACTIVE_ENTITLEMENTS_WEIGHT = 0.5


def active_entitlements(relation: str) -> Stake:
    return Stake(
        "active entitlements",
        "entitlement",
        relation,
        only=("status", "active"),
        weight=ACTIVE_ENTITLEMENTS_WEIGHT,
    )


# A part of a display name: an attribute, a relation (the related golden record's display
# name) or a pair of attributes shown as a range ("2024-01-01 – 2024-12-31").
DisplayPart = str | tuple[str, str]


@dataclass(frozen=True)
class EntityType:
    name: str
    prefix: str
    attributes: tuple[Attribute, ...]
    references: tuple[Reference, ...] = ()
    # How lists name a golden record: these parts, the empty ones left out, joined by
    # `display_separator`.
    display: tuple[DisplayPart, ...] = field(default=("name",))
    display_separator: str = " "
    # When the display parts give nothing: these attributes' values, joined by a space.
    display_fallback: tuple[str, ...] = ()
    # What a steward reads first about a record, in this order (accuracy samples, summaries).
    summary: tuple[str, ...] = ()
    # What a wrong decision about a record of this entity puts at stake (queue priority).
    stakes: tuple[Stake, ...] = ()
    # (attribute, value) that makes a record an organization's rather than a person's: while
    # it does not hold, PERSONAL attributes are sensitive. None: every record is a person's.
    organization: tuple[str, str] | None = None
    # Hard identifiers (`mdm.identifiers`): present, valid and different → never one record.
    identifiers: tuple[HardIdentifier, ...] = ()
    # A date attribute that tells people apart where no hard identifier does (a date of birth):
    # clustering never joins two groups whose dates are unalike through a link that did not
    # compare two dates (`matching.clustering`). "": none.
    birth_date: str = ""
    # Attributes that survive together from one source record (`mdm.survivorship`).
    survivorship_groups: tuple[SurvivorshipGroup, ...] = ()

    @cached_property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @cached_property
    def reference_columns(self) -> tuple[str, ...]:
        return tuple(r.column for r in self.references)

    @cached_property
    def declared_columns(self) -> frozenset[str]:
        """Every column a row of this entity may carry by name: attributes and references."""
        return frozenset(self.attribute_names + self.reference_columns)

    @cached_property
    def survived_fields(self) -> tuple[str, ...]:
        """Everything survivorship decides: attributes, then references."""
        return self.attribute_names + self.reference_columns

    @cached_property
    def sensitive_attributes(self) -> frozenset[str]:
        """Every attribute that is sensitive on some record (ALWAYS or PERSONAL)."""
        return frozenset(a.name for a in self.attributes if a.sensitive)

    @cached_property
    def _always_sensitive(self) -> frozenset[str]:
        return frozenset(a.name for a in self.attributes if a.sensitive == ALWAYS)

    def withheld(self, values: Mapping[str, Any]) -> frozenset[str]:
        """The attributes that are sensitive on a record with these (survived) values."""
        if self.organization is not None:
            marker, organization = self.organization
            if values.get(marker) == organization:
                return self._always_sensitive
        return self.sensitive_attributes

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    def field_label(self, name: str) -> str:
        """What a steward calls a survived field: the attribute's label, or for a reference
        column the relation's name ("customer_key" → "customer key")."""
        if name in self.attribute_names:
            return self.attribute(name).verbose_name
        return name.replace("_", " ")

    def default_strategy(self, field_name: str) -> str:
        for attribute in self.attributes:
            if attribute.name == field_name:
                return attribute.survivorship
        for reference in self.references:
            if reference.column == field_name:
                return reference.survivorship
        raise KeyError(field_name)

    @cached_property
    def display_relations(self) -> tuple[str, ...]:
        """The relations whose golden records' display names are part of this one's."""
        relations = {r.relation for r in self.references}
        return tuple(p for p in self.display if isinstance(p, str) and p in relations)

    def display_name(
        self, values: Mapping[str, Any], related: Mapping[str, str | None] | None = None
    ) -> str:
        """A human label for a golden record from its survived values and (`related`:
        relation → display name) the golden records it refers to."""
        related = related or {}
        parts = []
        for part in self.display:
            if isinstance(part, tuple):
                text = " – ".join(str(values[name]) for name in part if values.get(name))
            elif part in self.display_relations:
                text = related.get(part) or ""
            else:
                text = str(values[part]) if values.get(part) else ""
            if text:
                parts.append(text)
        if not parts:
            return " ".join(str(values[n]) for n in self.display_fallback if values.get(n))[:255]
        return self.display_separator.join(parts)[:255]


CUSTOMER = EntityType(
    name="customer",
    prefix="CUS",
    attributes=(
        Attribute("kind", "choice", MOST_FREQUENT, choices=("organization", "person")),
        Attribute("name", "name", LONGEST),
        Attribute("given_name", "person_name"),
        Attribute("family_name", "person_name"),
        Attribute("date_of_birth", "date", sensitive=ALWAYS),
        Attribute("tax_id", "tax_id", sensitive=ALWAYS),
        Attribute("lei", "lei", label="LEI (ISO 17442)"),
        Attribute("duns", "duns", label="D-U-N-S number"),
        Attribute("email", "email", MOST_RECENT, sensitive=PERSONAL),
        Attribute("phone", "phone", MOST_RECENT, sensitive=PERSONAL),
        Attribute("website", "website", MOST_FREQUENT),
        Attribute("address_line1", "address"),
        Attribute("address_line2", "address"),
        Attribute("city", "city"),
        Attribute("region", "text"),
        Attribute("postal_code", "postal_code"),
        Attribute("country", "country", MOST_FREQUENT, label="country (ISO 3166-1 alpha-2)"),
    ),
    references=(Reference("parent_key", "customer", "parent", inverse_label="child accounts"),),
    display=("name",),
    display_fallback=("given_name", "family_name"),
    # Contract value in the contracts' own currency units (not converted): 10,000 adds ln 2.
    stakes=(
        Stake("contract value", "contract", "customer", total="total_value", scale=10_000),
        active_entitlements("customer"),
        Stake("child accounts", "customer", "parent", weight=0.3),
    ),
    summary=(
        "name",
        "date_of_birth",
        "tax_id",
        "email",
        "phone",
        "address_line1",
        "city",
        "country",
    ),
    organization=("kind", "organization"),
    identifiers=(
        HardIdentifier("tax_id", "tax_id", "tax IDs", country="country"),
        HardIdentifier("lei", "lei", "LEIs"),
        HardIdentifier("duns", "duns", "D-U-N-S numbers"),
    ),
    birth_date="date_of_birth",
    survivorship_groups=(
        SurvivorshipGroup(
            "address",
            ("address_line1", "address_line2", "city", "region", "postal_code", "country"),
            follows=("tax_id",),
        ),
    ),
)

PRODUCT = EntityType(
    name="product",
    prefix="PRD",
    attributes=(
        Attribute("sku", "code"),
        Attribute("name", "text", LONGEST),
        Attribute("description", "text", LONGEST),
        Attribute("family", "text", MOST_FREQUENT),
        Attribute("gtin", "gtin"),
        Attribute("unit_of_measure", "code"),
        Attribute("list_price", "decimal", MOST_RECENT),
        Attribute("currency", "currency"),
    ),
    display=("name",),
    summary=("sku", "name", "gtin", "family", "unit_of_measure"),
    identifiers=(HardIdentifier("gtin", "gtin", "GTINs"),),
    stakes=(active_entitlements("product"),),
)

CONTRACT = EntityType(
    name="contract",
    prefix="CTR",
    attributes=(
        Attribute("contract_number", "code"),
        Attribute(
            "status",
            "choice",
            MOST_RECENT,
            choices=("draft", "active", "suspended", "expired", "cancelled"),
        ),
        Attribute("start_date", "date"),
        Attribute("end_date", "date", MOST_RECENT),
        Attribute("currency", "currency"),
        Attribute("total_value", "decimal", MOST_RECENT),
    ),
    references=(Reference("customer_key", "customer", "customer", inverse_label="contracts"),),
    display=("contract_number", "customer"),
    display_separator=" · ",
    summary=("contract_number", "customer_key", "status", "start_date", "end_date", "total_value"),
    identifiers=(
        HardIdentifier(
            "contract_number", "contract_number", "contract numbers", per_source_system=True
        ),
    ),
    stakes=(active_entitlements("contract"),),
)

ENTITLEMENT = EntityType(
    name="entitlement",
    prefix="ENT",
    attributes=(
        Attribute(
            "status", "choice", MOST_RECENT, choices=("active", "suspended", "expired", "cancelled")
        ),
        Attribute("quantity", "integer", MOST_RECENT),
        Attribute("start_date", "date"),
        Attribute("end_date", "date", MOST_RECENT),
    ),
    references=(
        Reference("contract_key", "contract", "contract", inverse_label="entitlements"),
        Reference("product_key", "product", "product", inverse_label="entitlements"),
        Reference("customer_key", "customer", "customer", inverse_label="entitlements"),
    ),
    # "Keystone Platform Starter · Acme Corporation · 2024-01-01 – 2024-12-31"
    display=("product", "customer", ("start_date", "end_date")),
    display_separator=" · ",
    summary=("contract_key", "product_key", "customer_key", "status", "quantity", "start_date"),
)

ENTITIES: dict[str, EntityType] = {e.name: e for e in (CUSTOMER, PRODUCT, CONTRACT, ENTITLEMENT)}
ENTITY_CHOICES = [(name, name) for name in ENTITIES]
# Every relation a golden record can have (a foreign key on GoldenRecord each), in
# declaration order: the union of the entities' references.
RELATIONS: tuple[str, ...] = tuple(
    dict.fromkeys(r.relation for e in ENTITIES.values() for r in e.references)
)
# (relation, referring entity type) -> what the referenced record calls its referrers.
INVERSE_LABELS: dict[tuple[str, str], str] = {
    (r.relation, e.name): r.inverse_label or e.name for e in ENTITIES.values() for r in e.references
}
PREFIXES: dict[str, EntityType] = {e.prefix: e for e in ENTITIES.values()}
# Every stake by name: one declaration per name (weight and scale), whichever entity has it.
STAKES: dict[str, Stake] = {}
for _entity in ENTITIES.values():
    for _stake in _entity.stakes:
        _known = STAKES.setdefault(_stake.name, _stake)
        assert (_known.weight, _known.scale) == (_stake.weight, _stake.scale), _stake.name
# relation -> the entity types whose display names include the related record's.
NAMED_AFTER: dict[str, tuple[str, ...]] = {
    relation: tuple(e.name for e in ENTITIES.values() if relation in e.display_relations)
    for relation in RELATIONS
}


def get_entity(name: str) -> EntityType:
    """The declaration for `name`; raises UnknownEntity for anything else."""
    try:
        return ENTITIES[name]
    except (KeyError, TypeError):
        from mdm.errors import UnknownEntity

        raise UnknownEntity(name) from None
