"""Dashboard figures and live accuracy of automatic links."""

import pytest
from django.urls import reverse

from matching.models import MatchRun
from mdm.models import IngestRejection, LinkMethod, SourceRecord
from mdm.services.resolution import merge
from stewardship.models import AutoLinkSample, SampleVerdict
from stewardship.selectors import accuracy_report, entity_figures, wilson_interval
from stewardship.services import draw_accuracy_sample, review_sample
from tests.stewardship.conftest import ingest

pytestmark = pytest.mark.django_db


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)

    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson_interval(0, 0) is None
    assert wilson_interval(5, 5)[1] == 1.0


@pytest.fixture
def auto_links():
    """Twenty golden records of two members each, the second linked automatically."""
    for n in range(20):
        crm = ingest("crm", source_key=f"c{n}", name=f"Firm {n}", city="Berlin")
        erp = ingest("erp", source_key=f"e{n}", name=f"Firm {n}", city="Bonn" if n % 2 else "")
        merge(
            survivor=crm.golden,
            loser=erp.golden,
            actor="match",
            reason="auto",
            method=LinkMethod.AUTO,
            probability=0.97,
        )


def test_draw_samples_a_share_of_auto_links_once(auto_links):
    first = draw_accuracy_sample(rate=0.1, seed=1)
    second = draw_accuracy_sample(rate=0.1, seed=1)

    assert len(first) == 2 and len(second) == 2
    assert not {s.record_id for s in first} & {s.record_id for s in second}
    assert all(s.link_probability == 0.97 for s in first)


def test_precision_estimate_from_confirmations(auto_links, steward_account):
    samples = draw_accuracy_sample(rate=0.25, seed=3)
    for n, sample in enumerate(samples):
        review_sample(sample=sample, confirmed=n != 0, actor=steward_account, reason="checked")

    report = accuracy_report()

    estimate = report.by_entity["customer"]
    assert (estimate.confirmed, estimate.reviewed) == (4, 5)
    assert estimate.low < 0.8 < estimate.high
    assert report.by_month and report.by_month[0][1].reviewed == 5
    assert AutoLinkSample.history.filter(history_type="~").count() == 5


def test_figures_count_goldens_links_and_conflicts(auto_links):
    customer = next(f for f in entity_figures() if f.entity_type == "customer")

    assert customer.active_goldens == 20
    assert customer.auto_link_rate == 1.0
    assert customer.conflicts == 10  # Berlin vs Bonn on the odd ones


def test_dashboard_page(steward_client, auto_links, acme_pair):
    MatchRun.objects.create(entity_type="customer", status="succeeded", records=42)
    IngestRejection.objects.create(reason="no source_key")

    html = steward_client.get(reverse("stewardship:dashboard")).content.decode()

    assert 'id="stat-queue">1<' in html
    assert "succeeded" in html and "rejections waiting" in html


def test_accuracy_page_confirm_and_reject(steward_client, auto_links):
    url = reverse("stewardship:accuracy")
    steward_client.post(url, {"action": "draw_sample", "rate_percent": "10"})
    first, second = AutoLinkSample.objects.all()

    steward_client.post(url, {"action": "confirm_sample", "sample": first.pk})
    steward_client.post(url, {"action": "reject_sample", "sample": second.pk, "reason": "twins"})

    assert set(AutoLinkSample.objects.values_list("verdict", flat=True)) == {
        SampleVerdict.CONFIRMED,
        SampleVerdict.REJECTED,
    }
    assert "95% CI" in steward_client.get(url).content.decode()
    assert SourceRecord.objects.filter(link_method=LinkMethod.AUTO).count() == 20


def test_golden_list_filters_conflicts(steward_client, auto_links):
    response = steward_client.get(
        reverse("stewardship:golden_list"), {"entity": "customer", "conflicts": "1"}
    )

    assert response.context["page"].paginator.count == 10


def test_accuracy_rows_show_both_records_key_values_inline(steward_client, auto_links):
    draw_accuracy_sample(rate=0.1, seed=1)
    sample = AutoLinkSample.objects.select_related("record").order_by("pk").first()
    partner = SourceRecord.objects.exclude(pk=sample.record_id).get(golden_id=sample.golden_id)

    response = steward_client.get(reverse("stewardship:accuracy"))

    row = next(r for r in response.context["samples"] if r.sample.pk == sample.pk)
    assert row.labels[0] == "name"
    assert row.sampled.values[0] == sample.record.attributes["name"]
    assert [o.record.pk for o in row.others] == [partner.pk]
    html = response.content.decode()
    block = html[html.index(f'data-sample="{sample.pk}"') :]
    assert partner.source_key in block[: block.index("</table>")]
    assert partner.attributes["city"] in block[: block.index("</table>")]
    assert 'value="confirm_sample"' in block and 'value="reject_sample"' in block


def test_accuracy_page_queries_do_not_grow_with_samples(steward_client, auto_links):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    draw_accuracy_sample(rate=0.1, seed=1)
    with CaptureQueriesContext(connection) as few:
        steward_client.get(reverse("stewardship:accuracy"))
    draw_accuracy_sample(rate=0.9, seed=2)
    with CaptureQueriesContext(connection) as many:
        steward_client.get(reverse("stewardship:accuracy"))

    assert AutoLinkSample.objects.count() > 10
    assert len(many) == len(few)


def test_golden_list_shows_active_records_unless_a_status_is_chosen(steward_client, auto_links):
    url = reverse("stewardship:golden_list")

    def count(**params):
        return steward_client.get(url, params).context["page"].paginator.count

    assert count() == 20
    assert count(status="merged") == 20
    assert count(status="retired") == 0
    assert count(status="any") == 40
    merged = steward_client.get(url, {"status": "merged"}).content.decode()
    assert "into <a" in merged
