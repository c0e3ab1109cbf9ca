"""The operator's logs: kopf's own formatters (JSON: one object per line with ``timestamp`` in UTC
with its zone, ``severity`` and ``object``, the reference of the object a line is about; plain: a
``[namespace/name]`` prefix and times with their zone), and a correction of kopf's level for a
watch whose CRD went."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import kopf

PLAIN_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _utc_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
    """RFC 3339 in UTC with milliseconds and the zone: 2026-12-02T14:13:37.123+00:00."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class _GoneCrdWatches(logging.Filter):
    """A watch whose CRD was deleted fails kopf with a 404 and a traceback; the operator expects it
    (an uninstall), starts kopf again over the kinds still served and logs that in one line. The
    traceback is dropped and the line kept at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and getattr(error, "status", None) == 404:
            record.exc_info, record.exc_text = None, None
            return _as_info(record)
        return True


def _as_info(record: logging.LogRecord) -> bool:
    """Log the record at INFO instead (a filter's answer: whether INFO lines are logged at all)."""
    record.levelno, record.levelname = logging.INFO, "INFO"
    return logging.getLogger().isEnabledFor(logging.INFO)


def configure_logging(fmt: str, level: str) -> None:
    """Kopf's own formatters: JSON (one object per line, ``timestamp`` with its zone, ``severity``,
    and ``object``, the reference of the object a line is about) or plain text (a ``[namespace/name]``
    prefix on lines about an object; times with their zone)."""
    if fmt == "json":
        kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="object")
    else:
        kopf.configure(log_format=PLAIN_LOG_FORMAT, log_prefix=True)  # type: ignore[arg-type]
    root = logging.getLogger()
    for handler in root.handlers:
        if handler.formatter is not None and fmt != "json":
            handler.formatter.formatTime = _utc_time  # type: ignore[method-assign]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    for reactor in ("kopf._core.reactor.orchestration", "kopf._core.reactor.running"):
        logging.getLogger(reactor).addFilter(_GoneCrdWatches())
    objects = logging.getLogger("kopf.objects")
    if root.level > logging.DEBUG:
        objects.setLevel(logging.WARNING)  # one line per handler run otherwise
