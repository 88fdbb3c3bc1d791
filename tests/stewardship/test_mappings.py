"""The steward's source mapping pages: list, preview on sample payloads (before, after,
rejections), save a new version (a bad one refused, naming field and reason), activate an
earlier one; an auditor reads but changes nothing."""

from __future__ import annotations

import json

import pytest

from mdm.models import SourceMapping, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.mappings import save_mapping_version

pytestmark = pytest.mark.django_db

URL = "/steward/mappings/crm/customer/"
COUNTRY = {"path": "Address.Country", "map": {"Deutschland": "DE"}}
SPEC = {"fields": {"source_key": "Id", "name": "Name", "country": COUNTRY}}


def test_preview_shows_before_after_and_a_rejection_with_path_and_reason(steward_client):
    samples = [{"Id": "1", "Name": "Acme", "Address": {"Country": "Deutschland"}},
               {"Id": "2", "Name": "Globex", "Address": ["Paris"]}]  # fmt: skip

    response = steward_client.post(URL, {
        "action": "preview_mapping", "spec": json.dumps(SPEC),
        "samples": "\n".join(json.dumps(s) for s in samples)})  # fmt: skip

    html = response.content.decode()
    assert response.status_code == 200
    assert "2 samples: 1 rejected." in html
    assert "Deutschland" in html  # before
    assert "<td>DE</td>" in html  # after
    assert "unmappable" in html
    assert "Address.Country" in html
    assert "expected an object at Address, got a list" in html
    assert not SourceMapping.objects.exists()
    assert not SourceRecord.objects.exists()


def test_a_bad_mapping_is_refused_naming_field_and_reason(steward_client):
    response = steward_client.post(URL, {
        "action": "save_mapping", "spec": "fields:\n  source_key: Id\n  colour: Colour\n",
        "samples": "", "reason": "try"})  # fmt: skip

    html = response.content.decode()
    assert "fields.colour" in html
    assert "unknown target attribute for customer" in html
    assert not SourceMapping.objects.exists()


def test_save_then_activate_an_earlier_version(steward_client):
    saved = steward_client.post(URL, {"action": "save_mapping", "spec": json.dumps(SPEC),
                                      "samples": "", "reason": "first shape"})  # fmt: skip
    steward_client.post(URL, {"action": "save_mapping", "samples": "", "reason": "second",
                              "spec": json.dumps({"fields": {"source_key": "Key"}})})  # fmt: skip
    first = SourceMapping.objects.get(version=1)

    steward_client.post(URL, {"action": "activate_mapping", "mapping": first.pk,
                              "reason": "back"})  # fmt: skip

    assert saved.status_code == 302
    assert SourceMapping.objects.get(active=True).version == 1
    listing = steward_client.get("/steward/mappings/").content.decode()
    assert "v1" in listing
    assert "first shape" in steward_client.get(URL).content.decode()


def test_the_page_offers_the_latest_payloads_as_samples(steward_client):
    save_mapping_version(system_code="crm", entity_type="customer", spec=SPEC, actor="t")
    initech = {"Id": "7", "Name": "Initech", "Address": {"Country": "US"}}
    ingest_records(entity_type="customer", system_code="crm", actor="t", rows=[(1, initech)])

    html = steward_client.get(URL).content.decode()

    assert "Initech" in html


def test_an_auditor_reads_but_cannot_preview_or_save(auditor_client):
    assert auditor_client.get(URL).status_code == 200
    assert auditor_client.post(URL, {"action": "save_mapping", "spec": json.dumps(SPEC),
                                     "samples": ""}).status_code == 403  # fmt: skip
    assert not SourceMapping.objects.exists()
