"""Process-wide logging: one line per record, to stderr, as text or as JSON.

Every record logged while a request or a job is handled carries its request id, or its job
and batch, from a context variable: set by ``log_context`` in the request middleware and in
the worker, read by a filter on the one handler, so no call site has to pass them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


# Each is an attribute of every record (None outside a request or a job).
CONTEXT_FIELDS = ("request_id", "job_id", "job_kind", "batch_id")
# A request's line gives these as ``extra``: JSON lines carry them as fields, so a collector
# needs no pattern to read the status or the duration.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")

_context: ContextVar[Mapping[str, str | int]] = ContextVar(
    "highseas_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Tag the records logged inside the block, by this task and by the tasks it starts."""
    given = {name: value for name, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **given})
    try:
        yield
    finally:
        _context.reset(token)


def tag(**fields: str | int | None) -> None:
    """Tag the records logged from here to the end of the current request (or job), its
    access line included: a request that makes a batch names it, so a log search for a
    request id finds the batch's unique_id, and from it the job's records."""
    given = {name: value for name, value in fields.items() if value is not None}
    _context.set({**_context.get(), **given})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = _context.get()
        for name in CONTEXT_FIELDS:
            setattr(record, name, current.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the context fields, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, *REQUEST_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: LogFormat = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Request lines come from highseas.request (with the request id); uvicorn's would repeat them.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs each callback's full URL at INFO, and receivers put tokens in query strings;
    # the attempt is logged by highseas.callbacks.service without the URL.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
