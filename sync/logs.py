"""Log lines for people (text) or for log shippers (JSON lines), each carrying the run id.

The run id is set once the run's ledger row exists (`current_run`), so every line of a run can
be joined to its row in `authz_sync_runs`. Secrets are masked by redact.RedactingFilter.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import datetime, timezone

from sync.redact import RedactingFilter

current_run: ContextVar[int | None] = ContextVar("current_run", default=None)
TEXT = "%(levelname)s %(name)s%(run)s: %(message)s"


class RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # An error reported after the run ended names its run (cli/common.py passes it).
        record.run_id = getattr(record, "run_id", None) or current_run.get()
        record.run = f" [run {record.run_id}]" if record.run_id is not None else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", None),
            "message": record.getMessage(),
        }
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def as_json() -> bool:
    """Whether stderr is JSON lines (then error messages go through the log too)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def setup(level: int, log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.addFilter(RunIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))  # it logs every request
    logging.getLogger("httpcore").setLevel(max(level, logging.INFO))  # headers at DEBUG
    # "Context impl SQLiteImpl." on every run is noise unless one is debugging.
    logging.getLogger("alembic").setLevel(level if level <= logging.DEBUG else logging.WARNING)
