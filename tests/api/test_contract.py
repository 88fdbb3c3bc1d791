"""The contract a generated client can trust: a client generated from the live schema with
`openapi-python-client` (no warnings) reaches every operation, reads every paginated list to
its end, gets typed models for entity attributes — and every request and answer of the run
validates with openapi-core against the schema."""

from __future__ import annotations

import io
from typing import Any

import jsonschema
import pytest

from api import webhooks
from mdm.contracts import event_schemas
from mdm.models import GoldenRecord, SourceRecord
from mdm.services.resolution import merge
from tests.api.contract import ValidatingTransport, generate_client, live_schema, operations

pytestmark = pytest.mark.django_db

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "customer": [
        {"source_key": "c1", "name": "Acme GmbH", "kind": "organization", "country": "Germany",
         "tax_id": "DE 123 456 789", "email": "INFO@acme.de", "website": "https://www.acme.de/x",
         "phone": "+49 30 1234567"},
        {"source_key": "c2", "name": "Globex", "kind": "organization", "country": "DE",
         "parent_key": "c1"},
        {"source_key": "c3", "given_name": "Ada", "family_name": "Lovelace", "kind": "person",
         "date_of_birth": "1815-12-10"},
    ],
    "product": [
        {"source_key": "p1", "sku": "W-1", "name": "Widget", "list_price": "9.90",
         "currency": "eur", "gtin": "4006381333931"},
        {"source_key": "p2", "sku": "W-2", "name": "Gadget", "list_price": 12},
    ],
    "contract": [
        {"source_key": "k1", "contract_number": "K-1", "status": "active",
         "start_date": "2024-01-01", "total_value": "1200.00", "customer_key": "c1"},
        {"source_key": "k2", "contract_number": "K-2", "status": "draft", "customer_key": "c2"},
    ],
    "entitlement": [
        {"source_key": "e1", "status": "active", "quantity": 3, "start_date": "2024-01-01",
         "contract_key": "k1", "product_key": "p1", "customer_key": "c1"},
        {"source_key": "e2", "status": "suspended", "quantity": 1, "contract_key": "k2"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory, django_db_blocker):
    """The client, generated once per run from the live schema (no database needed)."""
    with django_db_blocker.unblock():
        schema = live_schema()
    package, output = generate_client(schema, tmp_path_factory.mktemp("client"))
    return schema, package, output


def test_the_generator_has_no_warnings(generated):
    _, _, output = generated
    assert "WARNING" not in output.upper(), output
    assert "Unable to" not in output, output


def test_no_free_form_object_where_a_type_is_known(generated):
    """Every object in a request or answer has properties or typed values; the free-form
    objects are a JSON Schema document (the event schemas) and a source system's native
    payload (a mapping preview's samples, before mapping)."""
    schema, _, _ = generated
    loose = [
        path
        for path, node in _schemas(schema["components"]["schemas"], "#/components/schemas")
        if _free_form(node)
    ]

    assert loose == [
        "#/components/schemas/EventSchema/properties/schema",
        "#/components/schemas/MappingPreviewRow/properties/payload",
        "#/components/schemas/MappingSamplesRequest/properties/samples/items",
    ]


class Driver:
    """Calls operations by operationId through the generated client; remembers which."""

    def __init__(self, package, schema, app, token: str) -> None:
        self.package = package
        self.transport = ValidatingTransport(schema, app)
        self.client = package.AuthenticatedClient(
            base_url="http://testserver",
            token=token,
            httpx_args={"transport": self.transport},
            raise_on_unexpected_status=True,
        )
        self.modules = operations(package)
        self.called: set[str] = set()

    def __call__(self, operation: str, *args: Any, **kwargs: Any):
        self.called.add(operation)
        return self.modules[operation].sync_detailed(*args, client=self.client, **kwargs)

    def model(self, name: str, data: dict[str, Any]):
        return getattr(self.package.models, name).from_dict(data)

    def pages(self, operation: str, *args: Any, **kwargs: Any) -> list:
        """Every item of a paginated list, following `next_cursor` to the end."""
        items, cursor, seen = [], self.package.types.UNSET, 0
        while True:
            response = self(operation, *args, cursor=cursor, **kwargs)
            assert response.status_code == 200, response.content
            items += response.parsed.results
            seen += 1
            if response.parsed.next_cursor is None:
                assert "Link" not in response.headers
                return items
            assert response.headers["Link"].endswith('rel="next"')
            cursor = response.parsed.next_cursor
            assert seen < 100


@pytest.mark.usefixtures("private_targets")  # its webhook URLs are on 127.0.0.1
def test_generated_client_reaches_every_operation_and_every_answer_matches_the_schema(
    generated, crm_all_scopes_token, in_process_wsgi
):
    schema, package, _ = generated
    call = Driver(package, schema, in_process_wsgi, crm_all_scopes_token)
    models = package.models

    # health
    assert call("healthz").status_code == 200
    assert call("readyz").parsed.status.value in {"ok", "unavailable"}

    # ingest: PUT one, a batch as JSON, a batch as NDJSON, a tombstone
    for entity, rows in SAMPLES.items():
        first, *rest = rows
        prefix = entity.capitalize()
        created = call(
            f"{entity}_record_upsert",
            "crm",
            first["source_key"],
            body=call.model(f"{prefix}RecordInput", first),
            idempotency_key=f"put-{entity}",
        )
        assert created.status_code == 201, created.content
        assert created.headers["Location"].endswith(f"/crm/{entity}/{first['source_key']}")
        batch = call(
            f"{entity}_records_batch",
            "crm",
            body=call.model(
                f"{prefix}BatchInput",
                {"records": [*rest, {"source_key": "  ", "name": "no key"}]},
            ),
        )
        assert [r.outcome.value for r in batch.parsed.results] == ["loaded"] * len(rest) + [
            "rejected"
        ]
        assert batch.parsed.results[-1].reason_code.value == "missing_source_key"
        ndjson = b'{"source_key": "n1"}\nnot json\n'
        lines = call(
            f"{entity}_records_batch",
            "crm",
            body=package.types.File(payload=io.BytesIO(ndjson)),
        )
        assert [r.reason_code for r in lines.parsed.results][1].value == "unparseable"
        deleted = call(f"{entity}_record_delete", "crm", "n1")
        assert deleted.parsed.outcome.value == "deleted"

    # golden records: typed values, lists read to the end, ETag / 304, a merge's 308
    survivor = SourceRecord.objects.get(source_key="c1").golden
    loser = SourceRecord.objects.get(source_key="c2").golden
    merge(survivor=survivor, loser=loser, actor="test", reason="same company")
    for entity in SAMPLES:
        active = call.pages(f"{entity}_golden_list", limit=1)
        assert {g.id for g in active} == set(
            GoldenRecord.objects.filter(entity_type=entity, status="active").values_list(
                "id", flat=True
            )
        )
        listed = call.pages(f"{entity}_golden_list", limit=1, status=models.GoldenStatusFilter.ANY)
        assert {g.id for g in listed} == set(
            GoldenRecord.objects.filter(entity_type=entity).values_list("id", flat=True)
        )
        for golden in listed:
            shown = call(f"{entity}_golden_get", golden.id)
            if golden.status.value == "merged":
                assert shown.status_code == 308
                assert isinstance(shown.parsed, models.MergedRedirect)
                assert shown.headers["Cache-Control"] == "no-cache"
                continue
            assert isinstance(shown.parsed, getattr(models, f"{entity.capitalize()}Golden"))
            assert isinstance(shown.parsed.values, getattr(models, f"{entity.capitalize()}Values"))
            again = call(f"{entity}_golden_get", golden.id, if_none_match=shown.headers["ETag"])
            assert again.status_code == 304
            versions = call.pages(f"{entity}_golden_history", golden.id, limit=1)
            assert versions and versions[-1].history_type.value == "+"
        probe = call(f"{entity}_match_probe", body=call.model(
            f"{entity.capitalize()}MatchProbeBody", {"attributes": SAMPLES[entity][0]}
        ))  # fmt: skip
        assert probe.status_code == 409
        assert probe.parsed.error.code.value == "no_active_model"
    acme = call("customer_golden_get", survivor.pk).parsed
    assert acme.values.kind == models.CustomerKind.ORGANIZATION
    assert acme.values.country == "DE"
    assert acme.values.tax_id == "DE123456789"
    person = call("customer_golden_get", SourceRecord.objects.get(source_key="c3").golden_id)
    assert person.parsed.values.date_of_birth.isoformat() == "1815-12-10"
    assert call("entitlement_golden_get", SourceRecord.objects.get(source_key="e1").golden_id)\
        .parsed.values.quantity == 3  # fmt: skip

    # cross-reference
    xref = call("xref_get", models.Entity.CUSTOMER, "crm", "c2")
    assert xref.parsed.golden_id == survivor.pk
    assert (
        call(
            "xref_get", models.Entity.CUSTOMER, "crm", "c2", if_none_match=xref.headers["ETag"]
        ).status_code
        == 304
    )
    lookup = call(
        "xref_lookup",
        models.Entity.PRODUCT,
        body=call.model("XrefLookupRequest", {"keys": [
            {"system": "crm", "source_key": "p1"}, {"system": "crm", "source_key": "nope"}
        ]}),
    )  # fmt: skip
    assert [r.found for r in lookup.parsed.results] == [True, False]

    # events: every event read to the end, each typed by its type and valid by its schema
    events = call.pages("events_list", limit=5)
    contracts = event_schemas()
    for event in events:
        assert (
            type(event).__name__
            == "".join(w.capitalize() for w in event.type_.replace(".", "_").split("_")) + "Event"
        )
        jsonschema.validate(event.to_dict(), contracts[event.type_])
    assert {e.type_ for e in events} >= {"golden.created", "golden.updated", "golden.merged"}
    published = call("events_schemas").parsed
    assert {s.type_.value for s in published.results} == set(contracts)

    # webhooks: create (idempotent), list to the end, read, update with If-Match, deliveries,
    # replay, delete
    subscriptions = [
        call(
            "webhook_subscriptions_create",
            body=call.model(  # from the first event: a subscription starts from now otherwise
                "WebhookSubscriptionRequest", {"url": f"http://127.0.0.1:9/h{n}", "from_event": 1}
            ),
            idempotency_key=f"sub-{n}",
        )
        for n in range(3)
    ]
    assert {r.status_code for r in subscriptions} == {201}
    assert len(call.pages("webhook_subscriptions_list", limit=2)) == 3
    first = subscriptions[0].parsed.id
    read = call("webhook_subscription_get", first)
    updated = call(
        "webhook_subscription_update",
        first,
        body=call.model(
            "WebhookSubscriptionRequest", {"url": "http://127.0.0.1:9/new", "name": "renamed"}
        ),
        if_match=read.headers["ETag"],
    )
    assert updated.parsed.name == "renamed"
    stale = call(
        "webhook_subscription_partial_update",
        first,
        body=call.model("PatchedWebhookSubscriptionRequest", {"active": False}),
        if_match=read.headers["ETag"],
    )
    assert stale.status_code == 412
    assert stale.parsed.error.code.value == "precondition_failed"
    patched = call(
        "webhook_subscription_partial_update",
        first,
        body=call.model("PatchedWebhookSubscriptionRequest", {"event_types": ["golden.merged"]}),
        if_match=updated.headers["ETag"],
    )
    assert [t.value for t in patched.parsed.event_types] == ["golden.merged"]
    webhooks.dispatch_new_events()
    deliveries = call.pages("webhook_deliveries_list", subscriptions[1].parsed.id, limit=2)
    assert len(deliveries) == len(events)
    replayed = call(
        "webhook_subscription_replay",
        subscriptions[1].parsed.id,
        body=call.model("ReplayRequest", {"after": 0}),
        idempotency_key="replay-1",
    )
    assert replayed.parsed.replayed == len(events)
    assert call("webhook_subscription_delete", subscriptions[2].parsed.id).status_code == 204

    # source mappings: a new version (and a refused one), list, read, preview
    stripe = {"fields": {"source_key": "id", "name": "name",
                         "country": {"path": "address.country", "map": {"UK": "GB"}},
                         "source_updated_at": {"path": "created", "datetime": "unix"}}}  # fmt: skip
    version = call(
        "mappings_create",
        body=call.model(
            "NewMappingVersionRequest", {"system": "crm", "entity": "customer", "spec": stripe}
        ),
        idempotency_key="mapping-1",
    )
    assert version.status_code == 201, version.content
    refused = call("mappings_create", body=call.model("NewMappingVersionRequest", {
        "system": "crm", "entity": "customer", "spec": {"fields": {"colour": "c"}}}))  # fmt: skip
    assert refused.status_code == 422
    assert set(refused.parsed.error.fields.additional_properties) == {
        "spec.fields.colour", "spec.fields.source_key"}  # fmt: skip
    assert [m.version for m in call.pages("mappings_list", limit=1)] == [1]
    assert call("mapping_get", version.parsed.id).parsed.spec.fields["name"] == "name"
    preview = call("mappings_preview", body=call.model("MappingSamplesRequest", {
        "mapping": version.parsed.id,
        "samples": [{"id": "cus_1", "name": "Acme", "address": {"country": "UK"},
                     "created": 1700000000}, {"id": "cus_2", "address": "x"}]}))  # fmt: skip
    first, second = preview.parsed.results
    assert first.attributes["country"] == "GB"
    assert second.rejection.path == "address.country"
    assert call("mapping_get", version.parsed.id).parsed.version == 1

    every = {
        op["operationId"]
        for path in schema["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert call.called == every
    assert len(call.transport.exchanges) > 100


def _schemas(node: Any, path: str):
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{path}/{index}")


def _free_form(node: dict[str, Any]) -> bool:
    extra = node.get("additionalProperties", True)
    return not node.get("properties") and (extra is True or extra == {})
