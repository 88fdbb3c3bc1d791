"""Match specs: per entity type, the Splink comparisons and blocking rules, kept as data.

A spec names the columns the matching frame carries (each read from a source record's
normalized ``match_keys`` or canonical ``attributes``), the comparisons Splink scores,
the blocking rules that generate candidate pairs for prediction, the deterministic rules used
to estimate the prior, and the blocking rules EM trains m probabilities over. Thresholds
(auto-link, review band) live here too, overridable from settings.

Nothing here touches a database; `settings_for` turns a spec into a Splink settings object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import splink.comparison_library as cl
from django.conf import settings as django_settings
from splink import ColumnExpression, SettingsCreator, block_on

MATCH_KEYS = "match_keys"
ATTRIBUTES = "attributes"


@dataclass(frozen=True)
class Thresholds:
    """At or above `auto_link` records are linked; in [`review`, `auto_link`) a match
    candidate is stored for a steward; below `review` nothing happens."""

    auto_link: float = 0.95
    review: float = 0.5


@dataclass(frozen=True)
class MatchSpec:
    entity_type: str
    # frame column -> (where it is read from: MATCH_KEYS or ATTRIBUTES, key in that dict)
    columns: dict[str, tuple[str, str]]
    comparisons: tuple
    blocking_rules: tuple
    deterministic_rules: tuple
    deterministic_recall: float
    training_rules: tuple
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(self.columns)


def _tf(comparison):
    return comparison.configure(term_frequency_adjustments=True)


CUSTOMER_SPEC = MatchSpec(
    entity_type="customer",
    columns={
        "kind": (ATTRIBUTES, "kind"),
        "name_key": (MATCH_KEYS, "name_key"),
        "given_name_key": (MATCH_KEYS, "given_name_key"),
        "family_name_key": (MATCH_KEYS, "family_name_key"),
        "date_of_birth": (ATTRIBUTES, "date_of_birth"),
        "tax_id_key": (MATCH_KEYS, "tax_id_key"),
        "email_key": (MATCH_KEYS, "email_key"),
        "phone_key": (MATCH_KEYS, "phone_key"),
        "domain": (MATCH_KEYS, "domain"),
        "address_line1_key": (MATCH_KEYS, "address_line1_key"),
        "city_key": (MATCH_KEYS, "city_key"),
        "postal_code_key": (MATCH_KEYS, "postal_code_key"),
        "country": (MATCH_KEYS, "country"),
    },
    comparisons=(
        # Organization name without its legal form (persons: the full name when sent).
        _tf(cl.JaroWinklerAtThresholds("name_key", [0.95, 0.88])),
        _tf(cl.JaroWinklerAtThresholds("given_name_key", [0.92, 0.8])),
        _tf(cl.JaroWinklerAtThresholds("family_name_key", [0.92, 0.8])),
        # ISO dates as text: one or two typed digits off is still close.
        cl.LevenshteinAtThresholds("date_of_birth", [1, 2]),
        cl.LevenshteinAtThresholds("tax_id_key", [1]),
        cl.ExactMatch("email_key"),
        cl.ExactMatch("phone_key"),
        _tf(cl.ExactMatch("domain")),
        cl.JaroWinklerAtThresholds("address_line1_key", [0.92, 0.8]),
        cl.LevenshteinAtThresholds("postal_code_key", [1]),
        _tf(cl.ExactMatch("city_key")),
        cl.ExactMatch("country"),
    ),
    blocking_rules=(
        block_on("name_key"),
        block_on("given_name_key", "family_name_key"),
        block_on("family_name_key", "date_of_birth"),
        block_on("given_name_key", "date_of_birth"),
        block_on("tax_id_key"),
        block_on("email_key"),
        block_on("phone_key"),
        block_on("domain"),
        block_on("postal_code_key", "address_line1_key"),
        block_on("postal_code_key", "substr(name_key, 1, 3)"),
        block_on("postal_code_key", "substr(family_name_key, 1, 3)"),
    ),
    deterministic_rules=(
        block_on("tax_id_key"),
        block_on("email_key"),
        block_on("name_key", "postal_code_key"),
        block_on("given_name_key", "family_name_key", "date_of_birth"),
    ),
    deterministic_recall=0.7,
    training_rules=(
        block_on("date_of_birth"),
        block_on("postal_code_key"),
        block_on("name_key"),
        block_on("given_name_key", "family_name_key"),
    ),
    thresholds=Thresholds(auto_link=0.95, review=0.5),
)

PRODUCT_SPEC = MatchSpec(
    entity_type="product",
    columns={
        "sku_key": (MATCH_KEYS, "sku_key"),
        "gtin_key": (MATCH_KEYS, "gtin_key"),
        "name": (ATTRIBUTES, "name"),
        "family": (ATTRIBUTES, "family"),
        "unit_of_measure_key": (MATCH_KEYS, "unit_of_measure_key"),
    },
    comparisons=(
        cl.LevenshteinAtThresholds("sku_key", [1]),
        cl.ExactMatch("gtin_key"),
        _tf(cl.JaroWinklerAtThresholds(ColumnExpression("name").lower(), [0.95, 0.85])),
        _tf(cl.ExactMatch(ColumnExpression("family").lower())),
        cl.ExactMatch("unit_of_measure_key"),
    ),
    blocking_rules=(
        block_on("sku_key"),
        block_on("gtin_key"),
        block_on(ColumnExpression("name").lower()),
        block_on(ColumnExpression("family").lower(), "substr(lower(name), 1, 4)"),
    ),
    deterministic_rules=(block_on("gtin_key"), block_on("sku_key")),
    deterministic_recall=0.8,
    training_rules=(
        block_on(ColumnExpression("family").lower()),
        block_on("substr(sku_key, 1, 3)"),
    ),
)

# Contracts and entitlements are matched mostly by exact identifiers.
CONTRACT_SPEC = MatchSpec(
    entity_type="contract",
    columns={
        "contract_number_key": (MATCH_KEYS, "contract_number_key"),
        "start_date": (ATTRIBUTES, "start_date"),
        "end_date": (ATTRIBUTES, "end_date"),
        "currency": (ATTRIBUTES, "currency"),
    },
    comparisons=(
        cl.LevenshteinAtThresholds("contract_number_key", [1]),
        cl.ExactMatch("start_date"),
        cl.ExactMatch("end_date"),
        cl.ExactMatch("currency"),
    ),
    blocking_rules=(block_on("contract_number_key"), block_on("start_date", "end_date")),
    deterministic_rules=(block_on("contract_number_key"),),
    deterministic_recall=0.9,
    training_rules=(block_on("start_date"), block_on("contract_number_key")),
)

SPECS: dict[str, MatchSpec] = {
    spec.entity_type: spec for spec in (CUSTOMER_SPEC, PRODUCT_SPEC, CONTRACT_SPEC)
}


def get_spec(entity_type: str) -> MatchSpec:
    try:
        return SPECS[entity_type]
    except KeyError:
        raise ValueError(f"no match spec for entity type {entity_type!r}") from None


def thresholds_for(entity_type: str) -> Thresholds:
    """The spec's thresholds, overridden by ``settings.KEYSTONE_MATCH_THRESHOLDS``
    (``{"customer": {"auto_link": 0.97, "review": 0.6}}``) when set."""
    spec = get_spec(entity_type)
    override = getattr(django_settings, "KEYSTONE_MATCH_THRESHOLDS", {}).get(entity_type, {})
    return Thresholds(
        auto_link=override.get("auto_link", spec.thresholds.auto_link),
        review=override.get("review", spec.thresholds.review),
    )


def settings_for(spec: MatchSpec, *, retain_intermediate: bool = True) -> SettingsCreator:
    """Splink settings for deduplicating all live source records of one entity type."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=list(spec.comparisons),
        blocking_rules_to_generate_predictions=list(spec.blocking_rules),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=retain_intermediate,
    )
