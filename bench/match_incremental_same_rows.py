"""`bench/match_incremental.py` of any tree, on the same changed records in every run: for
comparing two trees (a yardstick's worktree and this one) back to back on identical input.

    python bench/match_incremental_same_rows.py TREE DATABASE SEED [match_incremental args...]

`match_incremental.py` picks its changed records by the clock, so two runs score different
records (2,550 to 3,406 pairs for a batch of 1,000 at 100,000 existing customers), and a
ratio of two runs mixes the trees' speed with the draw. Here the records are drawn by SEED
(source keys stay unique per run) and each run starts from a fresh copy of a template
database, ``DATABASE_tmpl``, that TREE's ``match_incremental.py --keep`` built and that was
renamed (``ALTER DATABASE … RENAME TO …_tmpl``): no run sees an earlier run's records.
TREE's own bench code and matching code run; only the draw of records is replaced.

Only 127.0.0.1, only a database name containing "bench" (TREE's bench refuses others).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchdb import bench_target, maintenance  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    tree, database, seed, *rest = argv
    if not re.fullmatch(r"[a-z0-9_]+", database):
        raise SystemExit(f"refusing database {database!r}: lower-case letters, digits, _")
    url = f"postgres://postgres@127.0.0.1:5432/{database}"
    target = bench_target(url)
    maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
    maintenance(target, "CREATE DATABASE {} TEMPLATE " + f'"{database}_tmpl"')

    # TREE's bench modules and code, run from TREE as its own bench is
    tree = str(Path(tree).resolve())
    os.chdir(tree)
    sys.path[:0] = [str(Path(tree) / "bench"), tree]
    sys.modules.pop("benchdb", None)
    import match_incremental

    drawn = match_incremental.changed_rows

    def changed_rows(existing: int, count: int, tag: str) -> list[dict]:
        rows = drawn(existing, count, f"s{seed}")
        for row in rows:
            row["source_key"] = row["source_key"].replace(f"-s{seed}-", f"-{tag}-")
        return rows

    match_incremental.changed_rows = changed_rows
    return match_incremental.main([*rest, "--database-url", url, "--reuse", "--keep"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
