"""The fault suite (see conftest.py)."""

FAULT_SUITE_NEEDS = (
    "the fault suite: worker processes share the PostgreSQL test database, and a PostgreSQL "
    "connection is what gets terminated"
)
