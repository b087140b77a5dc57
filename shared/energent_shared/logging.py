"""Structured logs in the JSON shape Cloud Logging reads from stdout, correlated with the request's trace.

One line per record: `severity`, `message`, `time`, the trace fields Cloud Logging joins to Cloud Trace
(`logging.googleapis.com/trace`, `/spanId`, `/trace_sampled`), the source location, and any fields passed as
`extra={"json_fields": {...}}` (the convention of google-cloud-logging's StructuredLogHandler).
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import sys
from dataclasses import dataclass

from energent_shared.config import settings


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str | None = None
    sampled: bool = False


_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("trace", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")


def parse_trace(traceparent: str | None, cloud_trace_context: str | None) -> TraceContext | None:
    """W3C `traceparent` wins over the legacy `X-Cloud-Trace-Context`; malformed values are ignored."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip())
        if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
            return TraceContext(match.group(1), match.group(2), bool(int(match.group(3), 16) & 1))
    if cloud_trace_context:
        match = _CLOUD_TRACE.match(cloud_trace_context.strip())
        if match:
            span = match.group(2)
            # Cloud Logging wants the span id as 16 hex digits; the legacy header carries it in decimal.
            span_hex = f"{int(span):016x}" if span and int(span) < 2**64 else None
            return TraceContext(match.group(1).lower(), span_hex, match.group(3) == "1")
    return None


def set_trace(context: TraceContext | None) -> contextvars.Token:
    return _trace.set(context)


def reset_trace(token: contextvars.Token) -> None:
    _trace.reset(token)


def current_trace() -> TraceContext | None:
    return _trace.get()


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "json_fields"}


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        trace = _trace.get()
        if trace is not None:
            entry["logging.googleapis.com/trace"] = f"projects/{_project()}/traces/{trace.trace_id}"
            if trace.span_id:
                entry["logging.googleapis.com/spanId"] = trace.span_id
            entry["logging.googleapis.com/trace_sampled"] = trace.sampled
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry.setdefault(key, value)
        return json.dumps(entry, default=str, ensure_ascii=False)


_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def _project() -> str:
    try:
        return settings().project
    except RuntimeError:
        return "-"


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is at the time of the record (servers and tests swap it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


_configured = False


def get_logger(name: str) -> logging.Logger:
    """A logger whose records reach stdout as Cloud Logging JSON (configured once per process)."""
    global _configured
    if not _configured:
        handler = _StdoutHandler()
        handler.setFormatter(CloudLoggingFormatter())
        root = logging.getLogger("energent")
        root.handlers[:] = [handler]
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        root.propagate = False
        _configured = True
    return logging.getLogger(f"energent.{name}")


def log_event(logger: logging.Logger, event: str, *, severity: int = logging.INFO, **fields) -> None:
    """A named, structured event (security, lifecycle): searchable by `jsonPayload.event`."""
    logger.log(severity, event, extra={"json_fields": {"event": event, **fields}}, stacklevel=2)
