"""Survivorship rules: preview how many golden records a change alters, then save it."""

import pytest
from django.urls import reverse

from mdm.entities import MOST_RECENT, SOURCE_PRIORITY
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, SurvivorshipRule
from mdm.services.pins import pin_value
from mdm.services.resolution import merge
from mdm.services.rules import preview_rule_change, update_rule
from tests.stewardship.conftest import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_cities():
    """Two golden records whose members disagree on the city (crm older, erp newer)."""
    goldens = []
    for n in range(2):
        crm = ingest("crm", source_key=f"c{n}", name=f"Firm {n}", city="Berlin")
        erp = ingest("erp", source_key=f"e{n}", name=f"Firm {n}", city="Munich")
        goldens.append(merge(survivor=crm.golden, loser=erp.golden, actor="t", reason="t"))
    ingest("crm", source_key="solo", name="Solo", city="Paris")
    return goldens


def test_preview_counts_the_golden_records_a_change_alters(two_cities):
    preview = preview_rule_change(
        entity_type="customer", attribute="city", strategy=SOURCE_PRIORITY, system_order=["crm"]
    )

    assert preview.affected == 2
    assert preview.examined == 3
    assert {(e.before, e.after) for e in preview.examples} == {("Munich", "Berlin")}
    assert GoldenRecord.objects.get(pk=two_cities[0].pk).values["city"] == "Munich"


def test_pinned_fields_are_not_counted(two_cities):
    pin_value(golden=two_cities[0], attribute="city", value="Bonn", actor="t", reason="HQ")

    preview = preview_rule_change(
        entity_type="customer", attribute="city", strategy=SOURCE_PRIORITY, system_order=["crm"]
    )

    assert preview.affected == 1


def test_saving_a_rule_recomputes_and_keeps_history(two_cities, steward_account):
    rule, preview = update_rule(
        entity_type="customer",
        attribute="city",
        strategy=SOURCE_PRIORITY,
        system_order=["crm"],
        actor=steward_account,
        reason="CRM owns addresses",
    )

    assert preview.affected == 2
    assert {
        g.values["city"] for g in GoldenRecord.objects.filter(pk__in=[g.pk for g in two_cities])
    } == {"Berlin"}
    history = rule.history.get()
    assert (history.history_user, history.history_change_reason) == (
        steward_account,
        "CRM owns addresses",
    )


def test_a_rule_change_needs_a_reason_and_a_known_strategy(two_cities):
    with pytest.raises(InvalidResolution, match="reason"):
        update_rule(
            entity_type="customer", attribute="city", strategy=MOST_RECENT, actor="t", reason=""
        )
    with pytest.raises(InvalidResolution, match="strategy"):
        preview_rule_change(entity_type="customer", attribute="city", strategy="coin_flip")


def test_rule_page_previews_before_saving(steward_client, two_cities):
    url = reverse("stewardship:rule", args=["customer", "city"])
    form = {"strategy": SOURCE_PRIORITY, "system_order": "crm", "reason": "CRM owns addresses"}

    preview = steward_client.post(url, {**form, "action": "preview_rule"})

    assert "This change alters <strong>2</strong> golden records" in preview.content.decode()
    assert not SurvivorshipRule.objects.exists()

    steward_client.post(url, {**form, "action": "save_rule"})

    assert SurvivorshipRule.objects.get().system_order == ["crm"]
    page = steward_client.get(url).content.decode()
    assert "CRM owns addresses" in page


def test_rules_list_shows_every_entity(steward_client):
    html = steward_client.get(reverse("stewardship:rules")).content.decode()

    assert all(name in html for name in ("customer", "product", "contract", "entitlement"))
