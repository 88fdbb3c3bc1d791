"""Unsupervised training of a match spec: u by random sampling, the prior from deterministic
rules, m by expectation maximisation over the spec's training blocking rules.

Training always yields a usable model when the data holds anything to learn from: EM runs on
whichever training rules the data supports; a rule whose EM fails (an empty block, a numeric
error such as "math domain error") is reported, and the comparisons no EM session trained
keep the starting m values the spec declares per level (`matching.specs`). The prior comes
from the spec's deterministic rules, or, where the data carries none of their columns (a
sparse set of names, streets, cities and phones), from its fallback rules. Only when no two
records agree on any of them, or there are fewer than two records, is there nothing to learn:
`NothingToLearn`, in words, and no model.

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
from matching.errors import NothingToLearn
from matching.scoring import level_label
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
        logger.warning("EM over %s skipped: %s", sql, _first_line(error))
        outcome.update(ok=False, error=_first_line(error)[:300])
    core = settings_obj.core_model_settings
    if not outcome["ok"] or core.probability_two_random_records_match != prior:
        outcome["prior_restored"] = core.probability_two_random_records_match != prior
        core.probability_two_random_records_match = prior
    if not outcome["ok"]:
        core.comparisons = comparisons
    return outcome


def _first_line(error: Exception) -> str:
    """The error in a few words: Splink's "Training rule … resulted in no record pairs. This
    means …" reads "no record pairs"."""
    text = str(error).strip() or type(error).__name__
    if "resulted in no record pairs" in text:
        return "no record pairs"
    return text.splitlines()[0]


def _estimate_prior(linker: Linker, spec: MatchSpec) -> dict:
    """The prior from the deterministic rules; when they find no pair (the data lacks their
    columns), from the spec's fallback rules. Raises NothingToLearn when neither finds one."""
    tried: list[str] = []
    for rules in (spec.deterministic_rules, spec.fallback_deterministic_rules):
        if not rules:
            continue
        tried.extend(r.get_blocking_rule("duckdb").blocking_rule_sql for r in rules)
        try:
            linker.training.estimate_probability_two_random_records_match(
                list(rules), recall=spec.deterministic_recall
            )
        except Exception as error:  # Splink raises plain exceptions on degenerate data
            logger.warning("prior over %s failed: %s", tried, _first_line(error))
            continue
        prior = linker._settings_obj._probability_two_random_records_match
        if prior and 0 < prior < 1:
            return {"prior": prior, "rules": list(tried)}
    raise NothingToLearn(
        spec.entity_type,
        "no two records agree on any of the rules that estimate how many records match "
        f"({'; '.join(tried)}): there are no duplicates to learn from, or the data carries "
        "none of the attributes these rules compare",
    )


def _untrained_levels(linker: Linker) -> list[str]:
    """ "column: level" for every level whose m no EM session estimated (it keeps the spec's
    declared starting value)."""
    untrained = []
    for comparison in linker._settings_obj.comparisons:
        for level in comparison.comparison_levels:
            if level.is_null_level or level._fix_m_probability:
                continue
            if not level._trained_m_probabilities:
                untrained.append(f"{comparison.output_column_name}: {level.label_for_charts}")
    return untrained


def train(
    spec: MatchSpec,
    frame: pa.Table,
    *,
    seed: int = 42,
    match_labels: Iterable[tuple[int, int]] = (),
) -> TrainedModel:
    """Train `spec` on `frame`; EM rules that yield no usable pairs are skipped and reported,
    and the levels no EM session trained keep the spec's declared starting m. Raises
    NothingToLearn when the data holds nothing to learn from.

    The prior comes from the deterministic rules only: an EM block never changes it (a block
    that fails or finds no pairs is undone, see `_em_block`). Training blocks run in
    `spec.training_rules` order and each EM session starts from the m values the previous one
    left, so their order matters: reordering them changes the trained model.

    `match_labels` are (record id, record id) pairs stewards decided are a match; with at
    least ``KEYSTONE_MATCH_MIN_LABELS`` of them they refine m after EM.
    """
    if frame.num_rows < 2:
        raise NothingToLearn(spec.entity_type, f"{frame.num_rows} record(s): nothing to compare")
    em_rules: list[dict] = []
    with linker_for(frame, settings_for(spec)) as linker:
        estimated = _estimate_prior(linker, spec)
        prior = estimated["prior"]
        try:
            linker.training.estimate_u_using_random_sampling(
                max_pairs=_u_max_pairs(frame.num_rows), seed=seed
            )
        except Exception as error:
            raise NothingToLearn(
                spec.entity_type, f"sampling random pairs failed: {_first_line(error)}"
            ) from error
        for rule in spec.training_rules:
            em_rules.append(_em_block(linker, rule))
        untrained = _untrained_levels(linker)
        labels = _refine_with_labels(linker, frame, match_labels)
        model = linker.misc.save_model_to_json()
    report = training_report(model, frame.num_rows, em_rules)
    report["deterministic_prior"] = prior
    report["prior_rules"] = estimated["rules"]
    report["declared_m_levels"] = untrained
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
                    "label": level_label(comparison.get("output_column_name", ""), level),
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


def training_notes(report: dict) -> list[str]:
    """What a training report says could not be learned, one sentence each: the EM rules that
    failed (and why), the levels left at their declared m, a fallback prior."""
    notes = [
        f"EM over {rule['rule']} skipped ({rule.get('error', 'no pairs')})"
        for rule in report.get("em_rules", [])
        if not rule.get("ok")
    ]
    if report.get("declared_m_levels"):
        notes.append(
            f"{len(report['declared_m_levels'])} comparison levels keep their declared "
            "starting m (no EM session trained them)"
        )
    return notes
