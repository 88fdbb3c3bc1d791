"""Operations tests: the FEBRL sample of the matching tests, as files a command loads."""

import json

import pytest

from tests.matching.conftest import febrl_sample  # noqa: F401 - a session fixture reused


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(figures: dict, sample: str, /, **labels) -> float:
    return figures.get((sample, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def febrl_files(febrl_sample, tmp_path):  # noqa: F811
    """crm.ndjson (originals, plus one record without a source key) and erp.ndjson (their
    typo'd duplicates)."""
    paths = {}
    for system, rows in febrl_sample.items():
        path = tmp_path / f"{system}.ndjson"
        extra = [{"given_name": "no key"}] if system == "crm" else []
        path.write_text("".join(json.dumps(row) + "\n" for row in [*rows, *extra]))
        paths[system] = path
    return paths
