"""`load_source` on files with hostile records: each one is rejected with its line and
reason, every good record loads, whichever chunk the bad one falls in."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings

from mdm.models import IngestRejection, SourceRecord

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue()


def good(number: int) -> str:
    return json.dumps({"source_key": f"good-{number}", "kind": "organization", "name": "Co"})


# One JSON text per record, as bytes (some are not UTF-8); the line each lands on is its
# position in this list + 1 (NDJSON) — between good records.
HOSTILE = [
    (b'{"source_key": "s1", "name": "Ber\\ud800lin"}', "name: not valid Unicode"),
    (b'{"source_key": "s2", "name": "Bad \xff\xfe bytes"}', "name: not valid Unicode"),
    (b'{"source_key": "s3", "parent_key": "' + b"p" * 256 + b'"}', "parent_key: longer than 255"),
    (b'{"source_key": "s4", "x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}", "nested"),
    (b'{"source_key": "s5", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper than 32"),
    (b'{"source_key": "s6", "quantity": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"source_key": "s7", "source_updated_at": "9999-12-31T23:00-05:00"}', "outside years"),
    (b'{"source_key": "s8", "note": "' + b"x" * 300_000 + b'"}', "larger than"),
]


def interleaved() -> list[bytes]:
    """good-0, hostile 1, good-1, hostile 2, …, good-N."""
    lines = [good(0).encode()]
    for number, (text, _) in enumerate(HOSTILE, start=1):
        lines += [text, good(number).encode()]
    return lines


@override_settings(KEYSTONE_INGEST_CHUNK_SIZE=3)
@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_hostile_records_in_a_json_file_are_rejected_each_with_its_line(tmp_path, suffix):
    """Lines of NDJSON, positions in a JSON array: the same numbers here."""
    lines = interleaved()
    path = tmp_path / f"crm{suffix}"
    if suffix == ".json":
        path.write_bytes(b"[\n" + b",\n".join(lines) + b"\n]\n")
    else:
        path.write_bytes(b"\n".join(lines) + b"\n")

    output = run("load_source", str(path), system="crm", entity="customer")

    assert f"loaded {len(HOSTILE) + 1}, updated 0, unchanged 0, stale 0, deleted 0, " in output
    assert f"rejected {len(HOSTILE)}" in output
    rejected = dict(IngestRejection.objects.values_list("line_number", "reason"))
    assert sorted(rejected) == [2 * n for n in range(1, len(HOSTILE) + 1)]
    for n, (_, reason) in enumerate(HOSTILE, start=1):
        assert reason in rejected[2 * n]
    keys = set(SourceRecord.objects.values_list("source_key", flat=True))
    assert keys == {f"good-{n}" for n in range(len(HOSTILE) + 1)}


def test_a_csv_row_with_bytes_that_are_not_utf8_or_an_oversized_field_fails_alone(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_bytes(
        b"source_key,kind,name,parent_key\n"
        b"1,organization,Good GmbH,\n"
        b"2,organization,Bad \xff AG,\n"
        b"3,organization," + b"x" * 200_000 + b",\n"
        b"4,organization,Long Ref AG," + b"p" * 300 + b"\n"
        b"5,organization,Also Good SA,\n"
    )

    with override_settings(KEYSTONE_INGEST_CHUNK_SIZE=2):
        output = run("load_source", str(path), system="crm", entity="customer")

    assert "loaded 2, updated 0, unchanged 0, stale 0, deleted 0, rejected 3" in output
    reasons = dict(IngestRejection.objects.values_list("line_number", "reason"))
    assert reasons[3].startswith("name: not valid Unicode")
    assert reasons[4].startswith("not valid CSV: field larger than field limit")
    assert reasons[5] == "parent_key: longer than 255 characters"
    assert set(SourceRecord.objects.values_list("source_key", flat=True)) == {"1", "5"}


def test_a_rejected_record_is_kept_storable_and_bounded(tmp_path):
    path = tmp_path / "crm.ndjson"
    path.write_bytes(
        b'{"source_key": "k\\ud800", "name": "A\\u0000B", "x": ' + b"[" * 60 + b"]" * 60 + b"}\n"
    )

    run("load_source", str(path), system="crm", entity="customer")

    rejection = IngestRejection.objects.get()
    assert rejection.source_key == "k\\ud800"
    assert rejection.payload["name"] == "A\\u0000B"
    depth, value = 0, rejection.payload["x"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert depth == 32
    assert "not kept" in value
