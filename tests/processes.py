"""What the process tests look at: this process's live children (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def child_processes() -> list[int]:
    """The process ids of this process's children, zombies (exited, not yet reaped) included."""
    pid = os.getpid()
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    """A process exists and is not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
