"""Fill the golden record columns of stored candidates and decisions from their records.

A candidate becomes the pair of its records' golden records (lower ID left; the records and
the explanation turned round when needed). Open candidates whose records now share a golden
record are superseded; of several open candidates between the same two golden records the
most probable stays open and lists the others' record pairs. A decision binds the two
records it was made on (their golden records' members at the time are not known)."""

from django.db import migrations

SIDES = {"left": "right", "right": "left"}


def _turned(explanation):
    return {
        name: {**item, "left": item.get("right"), "right": item.get("left")}
        if isinstance(item, dict)
        else item
        for name, item in (explanation or {}).items()
    }


def _entry(candidate, *, explanation):
    entry = {
        "left": candidate.left_id,
        "right": candidate.right_id,
        "probability": candidate.probability,
        "match_weight": candidate.match_weight,
        "reason": "",
    }
    if explanation:
        entry["explanation"] = candidate.explanation
    return entry


def fill(apps, schema_editor):
    MatchCandidate = apps.get_model("matching", "MatchCandidate")
    MatchDecision = apps.get_model("matching", "MatchDecision")
    MatchDecisionRecord = apps.get_model("matching", "MatchDecisionRecord")
    SourceRecord = apps.get_model("mdm", "SourceRecord")

    candidates = list(MatchCandidate.objects.order_by("-probability", "id"))
    decisions = list(MatchDecision.objects.all())
    record_ids = {c.left_id for c in candidates} | {c.right_id for c in candidates}
    record_ids |= {d.left_id for d in decisions} | {d.right_id for d in decisions}
    golden_of = dict(
        SourceRecord.objects.filter(pk__in=record_ids).values_list("pk", "golden_id")
    )

    kept = {}
    for candidate in candidates:
        left, right = golden_of.get(candidate.left_id), golden_of.get(candidate.right_id)
        if left is None or right is None:
            candidate.delete()  # a record that never had a golden record: nothing to review
            continue
        if left > right:
            left, right = right, left
            candidate.left_id, candidate.right_id = candidate.right_id, candidate.left_id
            candidate.explanation = _turned(candidate.explanation)
        candidate.left_golden_id, candidate.right_golden_id = left, right
        if candidate.status == "open" and left == right:
            candidate.status = "superseded"
        elif candidate.status == "open":
            first = kept.setdefault((left, right), candidate)
            if first is not candidate:
                if not first.pairs:  # the evidence is listed first, without its explanation
                    first.pairs = [_entry(first, explanation=False)]
                first.pairs.append(_entry(candidate, explanation=True))
                candidate.status = "superseded"
    fields = ["left_golden", "right_golden", "left", "right", "explanation", "pairs", "status"]
    MatchCandidate.objects.bulk_update(
        [c for c in candidates if c.pk is not None], fields, batch_size=500
    )

    links = []
    for decision in decisions:
        decision.left_golden_id = golden_of.get(decision.left_id)
        decision.right_golden_id = golden_of.get(decision.right_id)
        links.append(
            MatchDecisionRecord(decision_id=decision.pk, record_id=decision.left_id, side="left")
        )
        links.append(
            MatchDecisionRecord(decision_id=decision.pk, record_id=decision.right_id, side="right")
        )
    MatchDecision.objects.bulk_update(decisions, ["left_golden", "right_golden"], batch_size=500)
    MatchDecisionRecord.objects.bulk_create(links, batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("matching", "0006_golden_pair_candidates_and_decisions"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
