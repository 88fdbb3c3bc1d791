"""Bad input is a rejection, never a 5xx: each hostile record is rejected with its index or
line and the reason, the good records of the same batch load (JSON array, NDJSON, single PUT),
and the body limits hold before the body is parsed."""

import itertools
import json
import tracemalloc

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mdm.models import IngestRejection, SourceRecord

pytestmark = pytest.mark.django_db

URL = "/api/v1/sources/crm/customer"


def nested(depth: int) -> str:
    """JSON text of an object nested `depth` levels deep."""
    return '{"a":' * depth + "1" + "}" * depth


def record_text(key: str, **fields: str) -> str:
    """A record as JSON text; `fields` are already JSON text (to send what json.dumps can't)."""
    members = [f'"source_key": {json.dumps(key)}', '"name": "Good Co"']
    members += [f"{json.dumps(name)}: {value}" for name, value in fields.items()]
    return "{" + ", ".join(members) + "}"


EARLY, LATE = '"0001-01-01T00:00+05:00"', '"9999-12-31T23:59-05:00"'
# (what, one record as JSON text, a fragment of the reason)
HOSTILE = [
    ("lone surrogate in a value", record_text("h", city='"Berl\\ud800in"'), "city: not valid"),
    (
        "lone surrogate in the key",
        '{"source_key": "h\\udfff", "name": "Good Co"}',
        "source_key: not valid",
    ),  # fmt: skip
    ("lone surrogate in a column", '{"source_key": "h", "no\\ud800te": "x"}', "not valid"),
    ("lone surrogate deep in extra", record_text("h", extra='{"a": ["\\udc80"]}'), "not valid"),
    ("NUL in a value", record_text("h", city='"Ber\\u0000lin"'), "NUL"),
    ("key over 255 characters", record_text("k" * 256), "source_key: longer than 255"),
    ("reference over 255 characters", record_text("h", parent_key=json.dumps("p" * 256)), "255"),
    ("extra nested 40 deep", record_text("h", extra=nested(40)), "nested deeper than"),
    ("extra nested 100,000 deep", record_text("h", extra=nested(100_000)), "nested"),
    ("extra over the record size", record_text("h", note=json.dumps("x" * 300_000)), "larger"),
    ("an integer of 5,000 digits", record_text("h", quantity="9" * 5000), "not valid JSON"),
    ("a date that is no date", record_text("h", source_updated_at='"2026-02-30"'), "ISO 8601"),
    (
        "a time before year 1 in UTC",
        record_text("h", source_updated_at='"0001-01-01T00:00+05:00"'),
        "source_updated_at",
    ),  # fmt: skip
    (
        "a time after year 9999 in UTC",
        record_text("h", source_updated_at='"9999-12-31T23:59-05:00"'),
        "source_updated_at",
    ),  # fmt: skip
]


def json_array(*texts: str) -> str:
    return "[" + ",\n".join(texts) + "]"


@pytest.mark.parametrize("what, hostile, reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_record_is_rejected_alone_in_a_json_array(crm, what, hostile, reason):
    body = json_array(record_text("good-1"), hostile, record_text("good-2"))

    response = crm.post(f"{URL}/batch", body, content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["loaded", "rejected", "loaded"]
    assert results[1]["index"] == 1
    assert reason in results[1]["reason"]
    assert set(SourceRecord.objects.values_list("source_key", flat=True)) == {"good-1", "good-2"}
    assert IngestRejection.objects.count() == 1


def test_hostile_records_are_rejected_alone_in_the_records_object_too(crm):
    records = [record_text("good-1"), *(hostile for _, hostile, _ in HOSTILE), record_text("g2")]
    body = '{"records": ' + json_array(*records) + "}"

    response = crm.post(f"{URL}/batch", body, content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    outcomes = [r["outcome"] for r in response.json()["results"]]
    assert outcomes == ["loaded", *["rejected"] * len(HOSTILE), "loaded"]


@pytest.mark.parametrize("what, hostile, reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_line_is_rejected_alone_in_ndjson(crm, what, hostile, reason):
    body = "\n".join([record_text("good-1"), hostile, record_text("good-2")])

    response = crm.post(f"{URL}/batch", body, content_type="application/x-ndjson")

    assert response.status_code == 200, response.content[:300]
    results = response.json()["results"]
    assert [(r["line"], r["outcome"]) for r in results] == [
        (1, "loaded"),
        (2, "rejected"),
        (3, "loaded"),
    ]
    assert reason in results[1]["reason"]
    assert IngestRejection.objects.count() == 1


PUT_HOSTILE = [h for h in HOSTILE if '"source_key": "h"' in h[1]]


@pytest.mark.parametrize("what, hostile, reason", PUT_HOSTILE, ids=[h[0] for h in PUT_HOSTILE])
def test_a_hostile_put_is_refused_with_its_reason_not_500(crm, what, hostile, reason):
    response = crm.put(f"{URL}/h", hostile, content_type="application/json")

    assert response.status_code in (400, 422), response.content[:300]
    assert response.json()["error"]["message"]
    assert not SourceRecord.objects.exists()


def test_a_put_with_a_key_over_255_characters_is_a_422_rejection(crm):
    response = crm.put(f"{URL}/{'k' * 256}", {"name": "Good Co"}, format="json")

    assert response.status_code == 422
    assert "longer than 255" in response.json()["error"]["message"]
    assert IngestRejection.objects.get().source_key == "k" * 255


def test_ndjson_bytes_that_are_not_utf8_reject_their_line_only(crm):
    body = b"\n".join(
        [record_text("good-1").encode(), b'{"source_key": "bad", "name": "\xff\xfe"}']
    )

    response = crm.post(f"{URL}/batch", body, content_type="application/x-ndjson")

    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["loaded", "rejected"]
    assert "UTF-8" in results[1]["reason"] or "not valid" in results[1]["reason"]


def peak_bytes(send) -> tuple[int, object]:
    tracemalloc.start()
    try:
        response = send()
        return tracemalloc.get_traced_memory()[1], response
    finally:
        tracemalloc.stop()


@override_settings(KEYSTONE_API_MAX_BATCH=1000)
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", "[" + ",".join(["{}"] * 400_000) + "]"),
        ("application/x-ndjson", "\n".join(["{}"] * 400_000)),
        ("application/json", '{"records": [' + ",".join(["{}"] * 400_000) + "]}"),
    ],
    ids=["json", "ndjson", "records object"],
)
def test_the_record_limit_is_checked_while_parsing_not_after(crm, content_type, body):
    """400,000 empty records: refused (413) after the 1,001st, without building the rest
    (today every one is parsed first: ~100 MB of Python objects for a 1.2 MB body)."""
    peak, response = peak_bytes(lambda: crm.post(f"{URL}/batch", body, content_type=content_type))

    assert response.status_code == 413
    assert peak < 20 * 1024 * 1024


def test_a_json_batch_of_three_megabytes_loads_not_500(crm):
    """Review 2026-12: DRF reads a JSON body through Django's request.body, which refuses past
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) — a JSON batch between 2.5 MB and the documented
    32 MiB answered 500. The batch limits are the API's own (413 past them), not Django's."""
    rows = [
        {"source_key": f"k{n}", "name": f"Company {n:05d}", "notes": "x" * 300} for n in range(9000)
    ]
    body = json.dumps({"records": rows})

    response = crm.post(f"{URL}/batch", body, content_type="application/json")

    assert len(body) > 3 * 1024 * 1024
    assert response.status_code == 200
    assert response.json()["counts"]["loaded"] == 9000


MANY_LISTS = "[" + ",".join(["[]"] * 1_000_000) + "]"  # 3 MB: a million Python lists


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/api/v1/xref/customer/lookup", '{"keys": ' + MANY_LISTS + "}"),
        (
            "post",
            "/api/v1/match/customer",
            '{"attributes": {"name": "x"}, "x": ' + MANY_LISTS + "}",
        ),
        ("put", f"{URL}/big", '{"name": "x", "notes": ' + MANY_LISTS + "}"),
        (
            "post",
            "/api/v1/webhooks/subscriptions",
            '{"url": "https://x.example", "x": ' + MANY_LISTS + "}",
        ),
    ],
    ids=["lookup", "probe", "put", "webhook"],
)
def test_a_body_that_is_one_object_is_refused_past_its_own_smaller_limit(crm, method, path, body):
    """Review 2026-12: every endpoint parsed up to the batch limit (32 MiB) whole — a 3 MB
    lookup body built ~100 MB of Python objects, a 32 MiB one gigabytes. A body that is one
    object (everything but a batch) is refused (413) past KEYSTONE_API_MAX_OBJECT_BYTES, from
    its Content-Length, before parsing."""
    send = getattr(crm, method)

    peak, response = peak_bytes(lambda: send(path, body, content_type="application/json"))

    assert response.status_code == 413
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/xref/customer/lookup", '{"keys": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("/api/v1/match/customer", '{"attributes": ' + nested(100_000) + "}"),
        (f"{URL}/deep", nested(100_000)),
    ],
    ids=["lookup", "probe", "put"],
)
def test_a_body_nested_too_deep_for_the_parser_is_400_not_500(crm, path, body):
    method = crm.put if path.endswith("/deep") else crm.post

    response = method(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_lookup_key_that_cannot_be_encoded_is_not_found_not_500(crm):
    body = '{"keys": [{"system": "crm", "source_key": "a\\ud800"}]}'

    response = crm.post("/api/v1/xref/customer/lookup", body, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["results"][0]["found"] is False


# --- property: random batches of good and hostile records ---------------------------------
BATCH_NUMBERS = itertools.count()
GOOD_NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30
).filter(str.strip)


@st.composite
def batches(draw):
    """(JSON text of each record, its key if it is good) for 1-12 records."""
    size = draw(st.integers(1, 12))
    batch = next(BATCH_NUMBERS)
    records = []
    for index in range(size):
        key = f"b{batch}-{index}"
        if draw(st.booleans()):
            name = json.dumps(draw(GOOD_NAMES))
            records.append((record_text(key, name=name, city=json.dumps("Berlin")), key))
        else:
            _, hostile, _ = draw(st.sampled_from(HOSTILE))
            records.append((hostile.replace('"source_key": "h', f'"source_key": "{key}-h'), None))
    return batch, records


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(drawn=batches(), ndjson=st.booleans())
def test_random_batches_of_good_and_hostile_records_never_fail_the_batch(crm, drawn, ndjson):
    batch, records = drawn
    texts = [text for text, _ in records]
    if ndjson:
        body, content_type = "\n".join(texts), "application/x-ndjson"
    else:
        body, content_type = json_array(*texts), "application/json"

    response = crm.post(f"{URL}/batch", body, content_type=content_type)

    assert response.status_code == 200, response.content[:300]
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(records)))
    good = {key for _, key in records if key}
    assert {r["source_key"] for r in results if r["outcome"] == "loaded"} == good
    assert all(
        r["outcome"] == "rejected" and r["reason"]
        for (_, key), r in zip(records, results, strict=True)
        if key is None
    )
    stored = SourceRecord.objects.filter(source_key__startswith=f"b{batch}-")
    assert set(stored.values_list("source_key", flat=True)) == good
