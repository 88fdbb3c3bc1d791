"""Cross-reference lookups (now and as of), golden records, merges answered by 308."""

import time
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mdm.models import GoldenRecord, SourceRecord
from mdm.services.resolution import merge, split
from tests.api.conftest import ACME, load

pytestmark = pytest.mark.django_db


def merged_pair():
    """crm:1 and erp:A on one golden record (erp's merged into crm's)."""
    load("crm", [{**ACME, "source_key": "1"}])
    load("erp", [{**ACME, "source_key": "A", "name": "ACME Incorporated"}])
    survivor = SourceRecord.objects.get(source_key="1").golden
    loser = SourceRecord.objects.get(source_key="A").golden
    merge(survivor=survivor, loser=loser, actor="test", reason="same company")
    return survivor.pk, loser.pk


def lookup(client, keys, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"/api/v1/xref/customer/lookup?{query}", {"keys": keys}, format="json")


def test_xref_answers_the_golden_id_and_every_systems_key(crm):
    survivor, _ = merged_pair()

    response = crm.get("/api/v1/xref/customer/erp/A")

    assert response.json() == {
        "system": "erp",
        "source_key": "A",
        "found": True,
        "golden_id": survivor,
        "status": "active",
        "deleted": False,
        "keys": [{"system": "crm", "source_key": "1"}, {"system": "erp", "source_key": "A"}],
    }


def test_unknown_xref_is_404(crm):
    assert crm.get("/api/v1/xref/customer/crm/nope").status_code == 404


def test_batch_lookup_answers_in_order_with_unknown_keys_not_found(crm):
    survivor, _ = merged_pair()

    response = lookup(
        crm,
        [
            {"system": "erp", "source_key": "A"},
            {"system": "crm", "source_key": "missing"},
            {"system": "nosuch", "source_key": "1"},
            {"system": "crm", "source_key": 1},
        ],
    )

    results = response.json()["results"]
    assert [r["found"] for r in results] == [True, False, False, True]
    assert results[0]["golden_id"] == results[3]["golden_id"] == survivor


def test_batch_lookup_uses_the_same_number_of_queries_for_10_or_500_keys(crm):
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(500)])
    keys = [{"system": "crm", "source_key": str(i)} for i in range(500)]
    lookup(crm, keys[:1])  # warm up: token last_used_at write, content types

    with CaptureQueriesContext(connection) as few:
        assert lookup(crm, keys[:10]).status_code == 200
    with CaptureQueriesContext(connection) as many:
        response = lookup(crm, keys)

    assert all(r["found"] for r in response.json()["results"])
    assert len(many) == len(few) <= 4


def test_batch_lookup_as_of_uses_a_constant_number_of_queries(crm):
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(300)])
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    keys = [{"system": "crm", "source_key": str(i)} for i in range(300)]
    lookup(crm, keys[:1], as_of=now)

    with CaptureQueriesContext(connection) as few:
        lookup(crm, keys[:5], as_of=now)
    with CaptureQueriesContext(connection) as many:
        response = lookup(crm, keys, as_of=now)

    assert all(r["found"] for r in response.json()["results"])
    assert len(many) == len(few)


def test_more_than_1000_keys_is_413(crm):
    keys = [{"system": "crm", "source_key": str(i)} for i in range(1001)]

    assert lookup(crm, keys).status_code == 413


def test_lookup_with_a_malformed_key_is_422_naming_it(crm):
    response = lookup(crm, [{"system": "crm", "source_key": "1"}, {"system": "crm"}])

    assert response.status_code == 422
    assert list(response.json()["error"]["fields"]) == ["keys[1]"]


def test_xref_as_of_answers_from_history_before_the_merge(crm):
    load("crm", [{**ACME, "source_key": "1"}])
    load("erp", [{**ACME, "source_key": "A"}])
    time.sleep(0.01)
    before_merge = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    survivor = SourceRecord.objects.get(source_key="1").golden
    loser = SourceRecord.objects.get(source_key="A").golden
    merge(survivor=survivor, loser=loser, actor="test", reason="same")

    then = crm.get("/api/v1/xref/customer/erp/A", {"as_of": before_merge}).json()
    now = crm.get("/api/v1/xref/customer/erp/A").json()

    assert then["golden_id"] == loser.pk
    assert then["keys"] == [{"system": "erp", "source_key": "A"}]
    assert now["golden_id"] == survivor.pk


def test_xref_as_of_before_the_record_existed_is_404(crm):
    load("crm", [{**ACME, "source_key": "1"}])

    response = crm.get("/api/v1/xref/customer/crm/1", {"as_of": "2000-01-01T00:00:00Z"})

    assert response.status_code == 404


def test_bad_as_of_is_422(crm):
    response = crm.get("/api/v1/xref/customer/crm/1", {"as_of": "yesterday"})

    assert response.status_code == 422
    assert "as_of" in response.json()["error"]["fields"]


def test_golden_record_has_values_lineage_members_and_relations(crm_all_scopes):
    survivor, loser = merged_pair()

    body = crm_all_scopes.get(f"/api/v1/golden/customer/{survivor}").json()

    assert body["values"]["tax_id"] == "DE123456789"
    assert body["lineage"]["name"]["rule"]
    assert [(m["system"], m["source_key"]) for m in body["members"]] == [("crm", "1"), ("erp", "A")]
    assert body["relations"] == {"parent": None}
    assert body["merged_from"] == [loser]


def test_merged_id_answers_308_to_the_survivor_following_chains(crm):
    survivor, loser = merged_pair()
    load("billing", [{**ACME, "source_key": "b1"}])
    third = SourceRecord.objects.get(source_key="b1").golden
    merge(survivor=third, loser=GoldenRecord.objects.get(pk=survivor), actor="test", reason="again")

    response = crm.get(f"/api/v1/golden/customer/{loser}")

    assert response.status_code == 308
    assert response["Location"].endswith(f"/api/v1/golden/customer/{third.pk}")
    assert response.json()["merged_into"] == third.pk


def test_after_a_split_the_merged_away_id_answers_308_to_the_record_holding_its_records(crm):
    survivor, loser = merged_pair()
    created = split(
        golden=GoldenRecord.objects.get(pk=survivor),
        records=[SourceRecord.objects.get(source_key="A")],
        actor="test",
        reason="two companies",
    )

    moved = crm.get(f"/api/v1/golden/customer/{loser}")
    kept = crm.get(f"/api/v1/golden/customer/{survivor}")

    assert moved.status_code == 308
    assert moved["Location"].endswith(f"/api/v1/golden/customer/{created.pk}")
    assert kept.status_code == 200
    assert crm.get("/api/v1/xref/customer/erp/A").json()["golden_id"] == created.pk


def test_golden_of_another_entity_type_is_404(crm):
    survivor, _ = merged_pair()

    assert crm.get(f"/api/v1/golden/product/{survivor}").status_code == 404
    assert crm.get("/api/v1/golden/customer/CUS-NOPE").status_code == 404


def test_golden_list_filters_and_paginates_by_cursor(crm_all_scopes):
    load(
        "crm",
        [
            {**ACME, "source_key": "1"},
            {"source_key": "2", "name": "Globex", "country": "FR", "tax_id": "FR999"},
            {"source_key": "3", "name": "Initech", "country": "US"},
        ],
    )
    load("erp", [{"source_key": "x", "name": "Umbrella", "country": "DE"}])

    def ids(**params):
        return [
            g["display_name"]
            for g in crm_all_scopes.get("/api/v1/golden/customer", params).json()["results"]
        ]

    assert ids(name="glob") == ["Globex"]
    assert ids(tax_id="de 123.456.789") == ["ACME Inc."]
    assert ids(email="info@acme.com") == ["ACME Inc."]
    assert sorted(ids(country="Germany")) == ["ACME Inc.", "Umbrella"]
    assert ids(system="erp") == ["Umbrella"]
    assert len(ids(updated_since="2000-01-01T00:00:00Z")) == 4
    first = crm_all_scopes.get("/api/v1/golden/customer", {"limit": 3})
    second = crm_all_scopes.get(
        "/api/v1/golden/customer", {"limit": 3, "cursor": first.json()["next_cursor"]}
    )
    assert len(first.json()["results"]) == 3
    assert first["Link"].endswith('; rel="next"')
    assert len(second.json()["results"]) == 1
    assert second.json()["next_cursor"] is None
    assert not second.has_header("Link")


def test_golden_history_lists_versions_newest_first(crm):
    survivor, _ = merged_pair()

    body = crm.get(f"/api/v1/golden/customer/{survivor}/history").json()

    dates = [row["history_date"] for row in body["results"]]
    assert dates == sorted(dates, reverse=True)
    assert body["results"][-1]["history_type"] == "+"
    assert {row["actor"] for row in body["results"]} >= {"test"}


def test_single_xref_is_one_query_once_the_token_is_known(crm):
    merged_pair()
    crm.get("/api/v1/xref/customer/erp/A")  # warm up: the token is verified and remembered

    with CaptureQueriesContext(connection) as queries:
        response = crm.get("/api/v1/xref/customer/erp/A")

    assert response.json()["keys"] == [
        {"system": "crm", "source_key": "1"},
        {"system": "erp", "source_key": "A"},
    ]
    assert len(queries) == 1


def test_tombstoned_record_is_found_marked_deleted_with_its_golden_id(crm):
    crm.put("/api/v1/sources/crm/customer/1", ACME, format="json")
    crm.delete("/api/v1/sources/crm/customer/1")

    body = crm.get("/api/v1/xref/customer/crm/1").json()

    assert (body["found"], body["deleted"], body["status"], body["keys"]) == (
        True,
        True,
        "retired",
        [],
    )


def test_batch_lookup_answers_a_repeated_key_each_time_without_doubling_its_keys(crm):
    survivor, _ = merged_pair()
    key = {"system": "erp", "source_key": "A"}

    results = lookup(crm, [key, {"system": "crm", "source_key": "1"}, key]).json()["results"]

    both = [{"system": "crm", "source_key": "1"}, {"system": "erp", "source_key": "A"}]
    assert [(r["source_key"], r["golden_id"], r["keys"]) for r in results] == [
        ("A", survivor, both),
        ("1", survivor, both),
        ("A", survivor, both),
    ]


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres(
    reason="server-side prepared statements are PostgreSQL's (SQLite has none to check)"
)
def test_single_xref_runs_as_a_prepared_statement_on_postgresql(crm):
    """Planning the join costs several times its execution; a prepared statement plans once
    per connection (the same statement text, whatever the key)."""
    merged_pair()

    crm.get("/api/v1/xref/customer/crm/1")
    crm.get("/api/v1/xref/customer/erp/A")

    assert len([s for s in prepared_statements() if "rs.code = $2" in s]) == 1


@pytest.mark.postgres(
    reason="server-side prepared statements are PostgreSQL's (SQLite has none to check)"
)
def test_batch_lookup_runs_as_a_prepared_statement_on_postgresql(crm):
    merged_pair()

    lookup(crm, [{"system": "crm", "source_key": "1"}])
    lookup(crm, [{"system": "erp", "source_key": "A"}, {"system": "crm", "source_key": "x"}])

    assert len([s for s in prepared_statements() if "unnest($1::text[]" in s]) == 1


@pytest.mark.postgres(
    reason="server-side prepared statements are PostgreSQL's (SQLite has none to check)"
)
@pytest.mark.django_db(transaction=True)
def test_prepared_xref_lookup_answers_after_a_rolled_back_transaction(crm):
    """psycopg forgets prepared statements on rollback; the next lookup must prepare again
    rather than name a statement the server no longer has."""
    survivor, _ = merged_pair()
    crm.get("/api/v1/xref/customer/erp/A")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        crm.get("/api/v1/xref/customer/erp/A")
        raise ZeroDivisionError

    response = crm.get("/api/v1/xref/customer/erp/A")

    assert response.json()["golden_id"] == survivor


def test_a_batch_key_with_a_nul_character_is_not_found_rather_than_a_server_error(crm):
    """PostgreSQL text cannot hold NUL, so no such record can exist; it used to answer 500."""
    load("crm", [{**ACME, "source_key": "1"}])
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    keys = [{"system": "crm", "source_key": "a\x00b"}, {"system": "crm", "source_key": "1"}]

    batch = lookup(crm, keys).json()["results"]
    as_of = lookup(crm, keys, as_of=now).json()["results"]

    assert [r["found"] for r in batch] == [r["found"] for r in as_of] == [False, True]


def test_updated_since_sees_a_merge_and_orders_by_the_change(crm):
    """A merge changes the survivor (members, values) and the loser (status): both come back
    from `updated_since`, newest change first, and nothing that did not change does."""
    load("crm", [{**ACME, "source_key": "1"}, {**ACME, "source_key": "2", "name": "Globex"}])
    load("erp", [{**ACME, "source_key": "A", "name": "ACME Incorporated"}])
    survivor = SourceRecord.objects.get(source_key="1").golden
    loser = SourceRecord.objects.get(source_key="A").golden
    since = datetime.now(UTC).isoformat()

    merge(survivor=survivor, loser=loser, actor="test", reason="same company")
    body = crm.get("/api/v1/golden/customer", {"updated_since": since}).json()

    assert {row["id"] for row in body["results"]} == {survivor.pk, loser.pk}
    stamps = [row["updated_at"] for row in body["results"]]
    assert stamps == sorted(stamps, reverse=True)


def _chain(length: int) -> list[str]:
    """`length` merged customer golden records in a chain ending in an active one, written
    straight to the database (the services flatten chains; old data may not be flat)."""
    ids = [f"CUS-CHAIN{n:04d}" for n in range(length + 1)]
    GoldenRecord.objects.bulk_create(
        [GoldenRecord(id=golden_id, entity_type="customer") for golden_id in ids]
    )
    for golden_id, into in zip(ids, ids[1:], strict=False):
        GoldenRecord.objects.filter(pk=golden_id).update(status="merged", merged_into_id=into)
    return ids


def test_two_hop_merge_chain_redirects_to_its_end_with_the_chain(crm):
    first, middle, last = _chain(2)

    response = crm.get(f"/api/v1/golden/customer/{first}")

    assert response.status_code == 308
    assert response["Location"].endswith(f"/api/v1/golden/customer/{last}")
    assert response["Cache-Control"] == "no-cache"
    assert response.json()["chain"] == [first, middle]
    assert response.json()["merged_into"] == last


def test_a_chain_past_the_redirect_limit_is_404(crm):
    from mdm.selectors import MAX_REDIRECTS

    ids = _chain(MAX_REDIRECTS + 1)

    response = crm.get(f"/api/v1/golden/customer/{ids[0]}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "golden_record_not_found"


def test_golden_and_xref_answer_304_while_unchanged_and_200_after_a_change(crm):
    load("crm", [{**ACME, "source_key": "1"}])
    golden_id = SourceRecord.objects.get(source_key="1").golden_id
    golden_url, xref_url = f"/api/v1/golden/customer/{golden_id}", "/api/v1/xref/customer/crm/1"
    golden_tag, xref_tag = crm.get(golden_url)["ETag"], crm.get(xref_url)["ETag"]

    unchanged = [
        crm.get(golden_url, HTTP_IF_NONE_MATCH=golden_tag),
        crm.get(xref_url, HTTP_IF_NONE_MATCH=xref_tag),
    ]
    load("crm", [{**ACME, "source_key": "1", "name": "ACME Group"}])
    load("erp", [{**ACME, "source_key": "A"}])
    merge(
        survivor=GoldenRecord.objects.get(pk=golden_id),
        loser=SourceRecord.objects.get(source_key="A").golden,
        actor="test",
        reason="same",
    )
    changed = [
        crm.get(golden_url, HTTP_IF_NONE_MATCH=golden_tag),
        crm.get(xref_url, HTTP_IF_NONE_MATCH=xref_tag),
    ]

    assert [r.status_code for r in unchanged] == [304, 304]
    assert [r["ETag"] for r in unchanged] == [golden_tag, xref_tag]
    assert [r.status_code for r in changed] == [200, 200]
    assert changed[1].json()["keys"][1] == {"system": "erp", "source_key": "A"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/golden/customer",
        "/api/v1/golden/customer/CUS-X/history",
        "/api/v1/events",
        "/api/v1/webhooks/subscriptions",
    ],
)
@pytest.mark.parametrize("limit", ["abc", "0", "100000", "-1"])
def test_a_bad_limit_is_422_naming_limit_everywhere(crm, path, limit):
    GoldenRecord.objects.create(id="CUS-X", entity_type="customer")

    response = crm.get(path, {"limit": limit})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["limit"]


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        ("/api/v1/golden/customer", "nmae"),
        ("/api/v1/events", "aftr"),
        ("/api/v1/xref/customer/crm/1", "asof"),
        ("/api/v1/webhooks/subscriptions", "page"),
    ],
)
def test_an_unknown_query_parameter_is_422_naming_it(crm, path, typo):
    load("crm", [{**ACME, "source_key": "1"}])

    response = crm.get(path, {typo: "x"})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {typo: ["unknown query parameter"]}


def test_a_cursor_this_list_never_gave_out_is_422(crm):
    response = crm.get("/api/v1/golden/customer", {"cursor": "not-a-cursor"})

    assert response.status_code == 422
    assert list(response.json()["error"]["fields"]) == ["cursor"]


def test_golden_values_are_typed_per_entity(crm):
    load("crm", [{"source_key": "p", "sku": "W-1", "list_price": "9.9", "currency": "eur"}],
         entity="product")  # fmt: skip
    golden_id = SourceRecord.objects.get(source_key="p").golden_id

    body = crm.get(f"/api/v1/golden/product/{golden_id}").json()

    assert body["values"] == {"sku": "W-1", "list_price": "9.9", "currency": "EUR"}
    assert body["relations"] == {}
    assert body["lineage"]["list_price"]["rule"] == "most_recent"
