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
class EntityType:
    name: str
    prefix: str
    attributes: tuple[Attribute, ...]
    references: tuple[Reference, ...] = ()
    display: tuple[str, ...] = field(default=("name",))
    # (attribute, value) that makes a record an organization's rather than a person's: while
    # it does not hold, PERSONAL attributes are sensitive. None: every record is a person's.
    organization: tuple[str, str] | None = None

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

    def default_strategy(self, field_name: str) -> str:
        for attribute in self.attributes:
            if attribute.name == field_name:
                return attribute.survivorship
        for reference in self.references:
            if reference.column == field_name:
                return reference.survivorship
        raise KeyError(field_name)

    def display_name(self, values: dict) -> str:
        """A human label for a golden record built from its survived values."""
        parts = [str(values[name]) for name in self.display if values.get(name)]
        return " ".join(parts)[:255]


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
    organization=("kind", "organization"),
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
    display=("contract_number",),
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
    display=("status", "quantity"),
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


def get_entity(name: str) -> EntityType:
    """The declaration for `name`; raises UnknownEntity for anything else."""
    try:
        return ENTITIES[name]
    except (KeyError, TypeError):
        from mdm.errors import UnknownEntity

        raise UnknownEntity(name) from None
