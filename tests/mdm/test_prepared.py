"""Prepared statements on Django's connection (`mdm.db.prepared`) are logged as any other
statement: the query log, `CaptureQueriesContext` and query-count assertions read their text."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mdm.db.prepared import prepared_cursor

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepared statements"),
]

STATEMENT = "select %s::int + 1, cardinality(%b::text[])"


def test_a_prepared_statement_is_logged_with_its_text_every_time_it_runs():
    with CaptureQueriesContext(connection) as queries, prepared_cursor() as cursor:
        for number in range(3):  # prepared on the first run, executed by name after
            cursor.execute(STATEMENT, [number, ["a", "b'c"]])
            assert cursor.fetchone() == (number + 1, 2)

    sent = "select $1::int + 1, cardinality($2::text[])"
    assert [query["sql"] for query in queries] == [sent] * 3
