"""Training always yields a usable model: sparse data (names, streets, cities, phones) trains
and matches through the operator's commands; nothing to learn is a message, not a traceback."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from demo.sparse import sparse_organizations
from matching.frame import frame_from_rows
from matching.models import MatchModel
from matching.specs import CUSTOMER_SPEC
from matching.training import train
from mdm.entities import get_entity
from mdm.normalize import normalize_record

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def pairwise(xref_csv: str, truth: dict) -> tuple[float, float]:
    golden = {
        (r["source_system"], r["source_key"]): r["golden_id"]
        for r in csv.DictReader(io.StringIO(xref_csv))
    }
    keys = sorted(truth)
    predicted = actual = both = 0
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            same_golden, same_truth = golden[a] == golden[b], truth[a] == truth[b]
            predicted += same_golden
            actual += same_truth
            both += same_golden and same_truth
    return both / predicted, both / actual


@pytest.fixture(scope="module")
def sparse_set():
    return sparse_organizations(organizations=160, overlap=0.3, seed=11)


def test_sparse_two_source_set_trains_and_matches_through_the_commands(sparse_set, tmp_path):
    paths = sparse_set.write(tmp_path)
    for system, path in paths.items():
        run("load_source", str(path), system=system, entity="customer", no_progress=True)

    output = run("run_matching", "customer")

    assert "training: EM over" in output and "skipped (no record pairs)" in output
    assert "auto-linked:" in output
    precision, recall = pairwise(run("export_xref", "customer"), sparse_set.truth)
    assert precision >= 0.97
    assert recall >= 0.8


def test_a_level_no_em_session_trains_keeps_its_declared_starting_m(sparse_set):
    customer = get_entity("customer")
    rows = [
        (pk, n.keys, n.values)
        for pk, n in enumerate(
            (normalize_record(customer, row) for rows in sparse_set.rows.values() for row in rows),
            start=1,
        )
    ]

    trained = train(CUSTOMER_SPEC, frame_from_rows(CUSTOMER_SPEC, rows))

    levels = {
        level.get("label_for_charts"): level.get("m_probability")
        for comparison in trained.model["comparisons"]
        if comparison["output_column_name"] == "date_of_birth"
        for level in comparison["comparison_levels"]
    }
    assert levels["same date of birth"] == 0.9
    assert [r["ok"] for r in trained.report["em_rules"]] == [False, False, True, False, True]
    assert (
        '(l."name_key" = r."name_key") AND (l."city_key" = r."city_key")'
        in (trained.report["prior_rules"])
    )


def test_nothing_to_learn_is_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("source_key,kind,name\n1,organization,Alpha Works\n2,organization,Zeta Foods\n")
    run("load_source", str(path), system="crm", entity="customer", no_progress=True)

    with pytest.raises(CommandError, match="cannot train a customer match model: no two records"):
        run("run_matching", "customer")
    assert not MatchModel.objects.exists()
