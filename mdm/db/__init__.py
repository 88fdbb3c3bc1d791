"""Database plumbing shared by every app — infrastructure, not domain.

One helper per job, each with its vendor rule in one place:

- `copy`: inserts through PostgreSQL COPY (ids allocated from the sequence) with history rows
  copied inside the database; `bulk_create` elsewhere.
- `update`: set-based UPDATE ... FROM (VALUES or a COPYed temporary table) by primary key.
- `arrow`: COPY of Arrow tables (the derived tables a batch run rebuilds).
- `ids`: id lists as one array parameter (PostgreSQL) or in bounded chunks (SQLite).
- `maintenance`: ANALYZE / VACUUM after bulk rewrites.
- `prepared`: server-side prepared statements for hot reads.
- `watermark`: the gap-free high-water mark of a table read in id order (the outbox).
- `connection`: telling a lost connection from other database errors (to retry a chunk).
- `pool`: the fork-safe worker pool (parallel loading, batch apply).
- `tally`: counters kept in a row, added to in one statement (`INSERT ... ON CONFLICT`).

Table and column names are always quoted. Nothing here imports a model or a service.
"""
