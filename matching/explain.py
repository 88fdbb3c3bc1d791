"""Explanations a steward reads: why the model scores a pair of records as it does.

- The **chart** starts at the prior (the match weight of two records picked at random, before
  any comparison), adds one bar per comparison, and ends at the total; the probability is
  derived from that total on the page (``2^w / (1 + 2^w)``), so what is drawn adds up.
- Each comparison's **level** is read in the words its spec declares (`matching.specs.said`),
  with a tone — same, close, differ, none — that colours the canonical attributes the
  comparison reads. The attribute table therefore agrees with the model ("same name" for
  "ACME Corp." / "Acme Corporation"), not with string equality.

Pure functions over a stored explanation (`matching.scoring.explanation`) and the model's
settings; nothing here touches the database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from matching.scoring import CLOSE, DIFFER, NONE, NULL_GAMMA, SAME, level_labels, tone
from matching.specs import ATTRIBUTES, MATCH_KEYS, REFERENCES, get_spec

# An explanation entry that is no comparison: why clustering refused the pair (the candidate
# page shows it as a warning, not as a bar).
CONSTRAINT = "constraint"
# Match keys not named after the attribute they are derived from (`<attribute>_key` is).
MATCH_KEY_ATTRIBUTES = {"email_domain": "email", "domain": "website", "legal_form": "name"}
TONES = (SAME, CLOSE, DIFFER, NONE)


def prior_weight(model_settings: Mapping | None) -> float | None:
    """The model's starting match weight: log2 of the prior odds that two records picked at
    random are a match. None without a usable prior."""
    prior = (model_settings or {}).get("probability_two_random_records_match")
    if not prior or not 0 < prior < 1:
        return None
    return math.log2(prior / (1 - prior))


def probability_of(weight: float) -> float:
    """Match probability of a total match weight: 2^w / (1 + 2^w)."""
    if weight >= 0:
        return 1 / (1 + 2.0**-weight)
    odds = 2.0**weight
    return odds / (1 + odds)


# ------------------------------------------------------------------------------ attributes


def field_of(spec_column: tuple[str, str]) -> str:
    """The survived field (canonical attribute or reference column) a frame column reads."""
    source, key = spec_column
    if source in (ATTRIBUTES, REFERENCES):
        return key
    if source == MATCH_KEYS:
        return MATCH_KEY_ATTRIBUTES.get(key) or key.removesuffix("_key")
    raise ValueError(f"unknown frame column source {source!r}")


@cache
def covered_fields(entity_type: str) -> dict[str, tuple[str, ...]]:
    """comparison output column → the survived fields it compares: the field its own column
    reads, or (a comparison over several columns, such as the address block) the fields of
    every column it reads."""
    spec = get_spec(entity_type)
    covered: dict[str, tuple[str, ...]] = {}
    for comparison in spec.comparisons:
        built = comparison.get_comparison("duckdb")
        column = built.output_column_name
        if column in spec.columns:
            covered[column] = (field_of(spec.columns[column]),)
            continue
        inputs = [c.input_name for c in built._input_columns_used_by_case_statement]
        covered[column] = tuple(
            dict.fromkeys(field_of(spec.columns[name]) for name in inputs if name in spec.columns)
        )
    return covered


@dataclass(frozen=True)
class FieldReading:
    """How the model read one survived field of a pair: the comparison, its level in words
    and the level's tone."""

    comparison: str
    label: str
    tone: str
    weight: float


def field_readings(entity_type: str, explained: Mapping[str, dict]) -> dict[str, FieldReading]:
    """survived field → how the comparison covering it read the pair. A comparison whose own
    column is the field wins over one that reads it among others."""
    readings: dict[str, FieldReading] = {}
    covered = covered_fields(entity_type)
    ordered = sorted(covered.items(), key=lambda item: len(item[1]) != 1)
    for column, fields in ordered:
        entry = explained.get(column)
        if entry is None:
            continue
        reading = FieldReading(column, entry["level"], entry["tone"], entry["match_weight"])
        for name in fields:
            readings.setdefault(name, reading)
    return readings


# -------------------------------------------------------------------------- stored entries


def _raw_levels(model_settings: Mapping) -> dict[str, dict[str, int]]:
    """comparison column → stored label or SQL of each level → its gamma."""
    raw: dict[str, dict[str, int]] = {}
    for comparison in model_settings.get("comparisons", []):
        levels = comparison.get("comparison_levels", [])
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        by_text = {"null": NULL_GAMMA}
        for level in levels:
            if level.get("is_null_level"):
                for text in (level.get("label_for_charts"), level.get("sql_condition")):
                    if text:
                        by_text[text] = NULL_GAMMA
        for position, level in enumerate(non_null):
            for text in (level.get("label_for_charts"), level.get("sql_condition")):
                if text:
                    by_text.setdefault(text, len(non_null) - 1 - position)
        raw[comparison.get("output_column_name")] = by_text
    return raw


def described(explained: Mapping[str, dict], model_settings: Mapping | None) -> dict[str, dict]:
    """`explained` with every entry's level in the spec's current words, its gamma and tone —
    also for entries stored before they carried them (their stored label is looked up among
    the model's levels), in the order of the model's comparisons (a JSONB column keeps its keys
    in its own order). Without the model, an entry keeps its words and reads by the sign of
    its weight."""
    labels = level_labels(dict(model_settings)) if model_settings else {}
    raw = _raw_levels(model_settings) if model_settings else {}
    result = {}
    for column, entry in explained.items():
        entry = dict(entry)
        weight = float(entry.get("match_weight", 0.0) or 0.0)
        gamma = entry.get("gamma")
        if gamma is None:
            gamma = raw.get(column, {}).get(str(entry.get("level", "")))
        by_gamma = labels.get(column)
        if gamma is not None and by_gamma:
            entry["gamma"] = gamma
            entry["level"] = by_gamma.get(gamma, entry.get("level", ""))
            entry["tone"] = tone(gamma, max(by_gamma), weight)
        elif entry.get("tone") not in TONES:
            entry["tone"] = SAME if weight > 0 else DIFFER if weight < 0 else NONE
        entry["match_weight"] = weight
        result[column] = entry
    if model_settings:
        order = {
            c.get("output_column_name"): n
            for n, c in enumerate(model_settings.get("comparisons", []))
        }
        result = dict(sorted(result.items(), key=lambda item: order.get(item[0], len(order))))
    return result


# ----------------------------------------------------------------------------------- chart


@dataclass(frozen=True)
class Step:
    """One bar of the chart: from the running total `start` to `end` (= start + weight)."""

    name: str
    label: str
    tone: str
    weight: float
    start: float
    end: float
    fields: tuple[str, ...] = ()
    left: float = 0.0  # percent of the chart's width
    width: float = 0.0

    @property
    def is_prior(self) -> bool:
        return self.name == PRIOR


PRIOR = "prior"


@dataclass(frozen=True)
class WeightChart:
    steps: list[Step] = field(default_factory=list)
    total: float = 0.0
    probability: float = 0.0
    zero: float = 50.0  # percent position of weight 0
    prior_from_model: bool = True


def weight_chart(
    entity_type: str,
    explained: Mapping[str, dict],
    *,
    prior: float | None,
    match_weight: float,
) -> WeightChart:
    """A waterfall over `explained` (as `described` returns it): the prior first, then each
    comparison in the model's order, every bar starting where the last ended. The total is
    the prior plus the bars; the probability is derived from it. Without a model prior, the
    start is what the stored total leaves once the bars are taken away."""
    explained = {column: entry for column, entry in explained.items() if column != CONSTRAINT}
    weights = {column: float(entry["match_weight"]) for column, entry in explained.items()}
    prior_from_model = prior is not None
    if prior is None:
        prior = match_weight - sum(weights.values())
    covered = covered_fields(entity_type)
    raw: list[tuple[str, str, str, float, tuple[str, ...]]] = [
        (PRIOR, "prior: any two records", NONE, prior, ())
    ]
    raw += [
        (column, entry["level"], entry["tone"], weights[column], covered.get(column, ()))
        for column, entry in explained.items()
    ]
    running, spans = 0.0, []
    for name, label, level_tone, exact, fields in raw:
        weight = round(exact, 2)  # the page shows two decimals: they must add up as shown
        spans.append((name, label, level_tone, weight, running, running + weight, fields))
        running += weight
    points = [0.0] + [end for *_, end, _ in spans]
    low, high = min(points), max(points)
    scale = (high - low) or 1.0

    def percent(value: float) -> float:
        return round((value - low) / scale * 100, 2)

    steps = [
        Step(
            name,
            label,
            level_tone,
            weight,
            round(start, 2),
            round(end, 2),
            fields,
            left=percent(min(start, end)),
            width=max(round(abs(weight) / scale * 100, 2), 0.3),
        )
        for name, label, level_tone, weight, start, end, fields in spans
    ]
    return WeightChart(
        steps=steps,
        total=round(running, 2),
        probability=probability_of(round(running, 2)),
        zero=percent(0.0),
        prior_from_model=prior_from_model,
    )
