"""Generic values: a phone, e-mail, website or street address that many unrelated records
share is no evidence that they are one thing.

A switchboard number, a provider's ``billing@`` mailbox, a registered-agent address: from
`MatchSpec.generic_after` differently named records on (`MatchSpec.generic_things`), a value
of a column the spec checks (`MatchSpec.generic`) is *generic*. Placeholders that say "no
value" (``000-000-0000``, ``N/A``) are dropped earlier, at normalization (`mdm.normalize`).

Detected from the data by every batch run (`refresh`: counted over the frame before masking,
stored as `GenericValue`), and applied in one place, the frame (`mask`, called by every
frame `matching.frame` builds from the database): the value is nulled in its column, so it
neither makes a blocking key nor scores as agreement — in batch, incremental, probe and
explanation paths alike — and is kept in the companion column ``generic_<column>`` as
"<names>\\t<value>", which the model retains (`additional_columns_to_retain`) so the
explanation says why it was not counted (`note`). A value that becomes generic between two
batch runs counts until the next one.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from django.db import transaction

from matching.models import GenericValue
from matching.specs import SPECS, GenericCheck, MatchSpec
from mdm.db.arrow import constant, insert_table

SEPARATOR = "\x1f"  # between a value and its `together` columns

Found = dict[str, dict[str, int]]  # column → generic value → names sharing it


def _key(check: GenericCheck, frame: pa.Table) -> pa.ChunkedArray | pa.Array:
    """The value counted for `check`: the column, joined with its `together` columns (null
    when any of them is null)."""
    if not check.together:
        return frame[check.column]
    parts = [frame[check.column], *(frame[c] for c in check.together)]
    return pc.binary_join_element_wise(*parts, SEPARATOR)


def detect(spec: MatchSpec, frame: pa.Table) -> Found:
    """Pure: per checked column, the values shared by at least `spec.generic_after` different
    names in `frame` (an unmasked frame), with that count."""
    found: Found = {}
    if not spec.generic or frame.num_rows == 0:
        return found
    for check in spec.generic:
        keyed = pa.table({"key": _key(check, frame), "thing": frame[spec.generic_things]})
        counted = (
            keyed.filter(pc.is_valid(keyed["key"]))
            .group_by("key")
            .aggregate([("thing", "count_distinct")])
        )
        shared = counted.filter(
            pc.greater_equal(counted["thing_count_distinct"], spec.generic_after)
        )
        found[check.column] = dict(
            zip(
                shared["key"].to_pylist(),
                shared["thing_count_distinct"].to_pylist(),
                strict=True,
            )
        )
    return found


def rebuild(entity_type: str, found: Found) -> int:
    """Replace the stored generic values of `entity_type` by `found`, in one transaction."""
    columns = [c for c, values in found.items() for _ in values]
    values = [v for per_column in found.values() for v in per_column]
    things = [n for per_column in found.values() for n in per_column.values()]
    with transaction.atomic():
        GenericValue.objects.filter(entity_type=entity_type).delete()
        return insert_table(
            GenericValue,
            pa.table(
                {
                    "entity_type": constant(entity_type, len(values)),
                    "column": pa.array(columns, pa.string()),
                    "value": pa.array(values, pa.string()),
                    "things": pa.array(things, pa.int64()),
                }
            ),
        )


def stored(entity_type: str) -> Found:
    """The generic values the last batch run stored (a short list: generic values are rare)."""
    found: Found = {}
    for column, value, things in GenericValue.objects.filter(entity_type=entity_type).values_list(
        "column", "value", "things"
    ):
        found.setdefault(column, {})[value] = things
    return found


def with_companions(spec: MatchSpec, frame: pa.Table) -> pa.Table:
    """Pure: `frame` with an empty ``generic_<column>`` column per check it lacks (the model
    retains them, so every frame carries them)."""
    for check in spec.generic:
        if check.companion not in frame.column_names:
            frame = frame.append_column(check.companion, pa.nulls(frame.num_rows, pa.string()))
    return frame


def mask(spec: MatchSpec, frame: pa.Table, found: Found | None = None) -> pa.Table:
    """`frame` with every generic value nulled in its column and kept in its companion
    column as "<names>\\t<value>". `found` defaults to the stored generic values."""
    frame = with_companions(spec, frame)
    if not spec.generic or frame.num_rows == 0:
        return frame
    found = stored(spec.entity_type) if found is None else found
    for check in spec.generic:
        generic = found.get(check.column)
        if not generic:
            continue
        values = pa.array(list(generic), pa.string())
        counts = pa.array([str(n) for n in generic.values()], pa.string())
        key = _key(check, frame)
        position = pc.index_in(key, value_set=values)
        hit = pc.is_valid(position)
        if not pc.any(hit).as_py():
            continue
        companion = pc.binary_join_element_wise(pc.take(counts, position), key, "\t")
        column = frame[check.column]
        index = frame.column_names.index(check.column)
        frame = frame.set_column(
            index, check.column, pc.if_else(hit, pa.scalar(None, column.type), column)
        )
        index = frame.column_names.index(check.companion)
        frame = frame.set_column(index, check.companion, companion)
    return frame


def refresh(spec: MatchSpec, frame: pa.Table) -> tuple[pa.Table, Found]:
    """A batch run's step: detect the generic values of the unmasked `frame`, store them, and
    return the frame masked with them."""
    found = detect(spec, frame)
    rebuild(spec.entity_type, found)
    return mask(spec, frame, found), found


# ------------------------------------------------------------------------------ explanations


def _checks_by_comparison() -> dict[str, tuple[GenericCheck, str]]:
    return {
        check.comparison: (check, spec.entity_type)
        for spec in SPECS.values()
        for check in spec.generic
    }


CHECKS_BY_COMPARISON = _checks_by_comparison()


def note(comparison: str, left: str | None, right: str | None) -> tuple[str, str] | None:
    """When both sides of `comparison` had the same generic value (companion columns `left`
    and `right`): the words a steward reads, and the value. None otherwise."""
    if left is None or right is None or left != right or comparison not in CHECKS_BY_COMPARISON:
        return None
    check, entity_type = CHECKS_BY_COMPARISON[comparison]
    names, _, value = left.partition("\t")
    shown = value.split(SEPARATOR, 1)[0]
    return (
        f"shared {check.noun} is used by {names} differently named {entity_type}s — not counted",
        shown,
    )
