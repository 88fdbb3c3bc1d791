"""Unsupervised training of a match spec: u by random sampling, the prior from deterministic
rules, m by expectation maximisation over the spec's training blocking rules.

Returns the Splink model as a plain dict (what `Linker(..., model)` reads back) and a training
report a steward can read: for every comparison level its m, u and match weight.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
from django.conf import settings
from splink import Linker
from splink.internals.blocking_rule_creator import BlockingRuleCreator

from matching.engine import linker_for
from matching.specs import MatchSpec, settings_for

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    model: dict
    report: dict


def _u_max_pairs(record_count: int) -> float:
    configured = settings.KEYSTONE_MATCH_U_MAX_PAIRS
    all_pairs = record_count * (record_count - 1) / 2
    return max(1.0, min(configured, all_pairs))


def _min_labels() -> int:
    return settings.KEYSTONE_MATCH_MIN_LABELS


def _refine_with_labels(
    linker: Linker, frame: pa.Table, match_labels: Iterable[tuple[int, int]]
) -> dict:
    """Add an m estimate from steward "match" pairs (Splink's estimate_m_from_pairwise_labels)
    — one more estimate next to the EM sessions', Splink takes the median per level — when
    there are enough labelled pairs among the frame's records."""
    present = set(frame["unique_id"].to_pylist())
    pairs = sorted(
        {(min(a, b), max(a, b)) for a, b in match_labels if a in present and b in present}
    )
    outcome = {"match_pairs": len(pairs), "minimum": _min_labels(), "applied": False}
    if len(pairs) < _min_labels():
        return outcome
    labels = pa.table(
        {
            "unique_id_l": pa.array([a for a, _ in pairs], pa.int64()),
            "unique_id_r": pa.array([b for _, b in pairs], pa.int64()),
        }
    )
    table = linker.table_management.register_table(labels, "steward_labels", overwrite=True)
    linker.training.estimate_m_from_pairwise_labels(table)
    outcome["applied"] = True
    return outcome


def _em_block(linker: Linker, rule: BlockingRuleCreator) -> dict:
    """One EM training block over `rule`, leaving the model as it was when the block fails or
    finds no pairs.

    Splink 5.0.0 starts an EM session by writing the session's blocking-adjusted prior and its
    reduced comparison list onto the linker's own settings, and writes the trained copy back
    only on success: a block with no pairs left that prior on the model (6.7e-4 became 0.408
    on FEBRL) and dropped the comparisons the rule blocks on. Both are saved before the block
    and restored after a failure.
    """
    settings_obj = linker._settings_obj
    prior = settings_obj.core_model_settings.probability_two_random_records_match
    comparisons = list(settings_obj.core_model_settings.comparisons)
    sql = rule.get_blocking_rule("duckdb").blocking_rule_sql
    outcome = {"rule": sql, "ok": True, "prior_before": prior, "prior_restored": False}
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )
    except Exception as error:  # Splink raises plain exceptions for empty blocks
        logger.warning("EM over %s skipped: %s", sql, str(error).splitlines()[0])
        outcome.update(ok=False, error=str(error)[:300])
    core = settings_obj.core_model_settings
    if not outcome["ok"] or core.probability_two_random_records_match != prior:
        outcome["prior_restored"] = core.probability_two_random_records_match != prior
        core.probability_two_random_records_match = prior
    if not outcome["ok"]:
        core.comparisons = comparisons
    return outcome


def train(
    spec: MatchSpec,
    frame: pa.Table,
    *,
    seed: int = 42,
    match_labels: Iterable[tuple[int, int]] = (),
) -> TrainedModel:
    """Train `spec` on `frame`; EM rules that yield no usable pairs are skipped and reported.

    The prior comes from the deterministic rules only: an EM block never changes it (a block
    that fails or finds no pairs is undone, see `_em_block`). Training blocks run in
    `spec.training_rules` order and each EM session starts from the m values the previous one
    left, so their order matters: reordering them changes the trained model.

    `match_labels` are (record id, record id) pairs stewards decided are a match; with at
    least ``KEYSTONE_MATCH_MIN_LABELS`` of them they refine m after EM.
    """
    em_rules: list[dict] = []
    with linker_for(frame, settings_for(spec)) as linker:
        training = linker.training
        training.estimate_probability_two_random_records_match(
            list(spec.deterministic_rules), recall=spec.deterministic_recall
        )
        prior = linker._settings_obj._probability_two_random_records_match
        training.estimate_u_using_random_sampling(max_pairs=_u_max_pairs(frame.num_rows), seed=seed)
        for rule in spec.training_rules:
            em_rules.append(_em_block(linker, rule))
        if not any(r["ok"] for r in em_rules):
            raise RuntimeError(f"no EM training rule produced pairs for {spec.entity_type}")
        labels = _refine_with_labels(linker, frame, match_labels)
        model = linker.misc.save_model_to_json()
    report = training_report(model, frame.num_rows, em_rules)
    report["deterministic_prior"] = prior
    report["steward_labels"] = labels
    return TrainedModel(model=model, report=report)


def training_report(model: dict, record_count: int, em_rules: list[dict]) -> dict:
    """m, u and match weight for every level of every comparison in `model`."""
    comparisons = []
    for comparison in model.get("comparisons", []):
        levels = []
        for level in comparison.get("comparison_levels", []):
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else None
            levels.append(
                {
                    "label": level.get("label_for_charts") or level.get("sql_condition"),
                    "m_probability": m,
                    "u_probability": u,
                    "match_weight": weight,
                }
            )
        comparisons.append({"column": comparison.get("output_column_name"), "levels": levels})
    return {
        "records": record_count,
        "probability_two_random_records_match": model.get("probability_two_random_records_match"),
        "em_rules": em_rules,
        "comparisons": comparisons,
    }
