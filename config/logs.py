"""Log lines that say which request, file load or task wrote them.

`CorrelationFilter` stamps every record with the current correlation ID (`mdm.context`: set
per request by the middleware, per file load by `load_file`, per Celery task from its
headers or match request); `JsonFormatter` writes one JSON object per line (LOG_FORMAT=json).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from mdm.context import current_correlation_id

# Attributes every LogRecord has: the rest of a record's attributes are `extra=` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "correlation_id",
    "taskName",
}


class CorrelationFilter(logging.Filter):
    """Sets `record.correlation_id` (an explicit `extra={"correlation_id": …}` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = current_correlation_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    correlation_id, process, the record's extra fields, and exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "") or current_correlation_id(),
            "process": record.process,
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
