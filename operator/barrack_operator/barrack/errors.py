"""One error hierarchy for Barrack, grouped by what the caller can do, and the one place that maps
HTTP replies and transport faults onto it.

    BarrackError
    ├── RequestRejected          the caller must change something before trying again
    │   ├── InvalidRequest       400, 422: the request itself is wrong
    │   ├── Unauthorized         401, 403: the API key is missing, wrong or not allowed
    │   ├── InsufficientCredits  402: top up the account
    │   └── NotFound             404: no such id
    ├── PreconditionFailed       409: a state forbids it now; may pass later (carries Barrack's text)
    ├── CallsPaused              not sent at all: the caller's task may make no call (a paused object)
    └── TransientError           try again later, unchanged
        ├── RateLimited          429, with Retry-After seconds
        └── ApiUnavailable       5xx, timeouts, connection errors: a mutation may or may not have
            │                    happened, so a caller must look before it repeats one
            └── MalformedReply   a 2xx whose body is not JSON or not the contract's shape

Both error body shapes Barrack may send are read here: ``{"success": false, "message",
"error_code"}`` and the legacy tier's ``{"status": false, "message", "error_reason"}``.

Error text carries the route, status and request id, and never the API key: only Barrack's own
``message`` is quoted, truncated, and scrubbed of the key should Barrack ever echo it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

MAX_MESSAGE_CHARS = 300


class BarrackError(Exception):
    """Base of every error the Barrack client raises."""

    def __init__(
        self,
        message: str,
        *,
        route: str = "",
        status_code: int | None = None,
        error_code: str = "",
        request_id: str = "",
    ) -> None:
        self.message = message
        self.route = route
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.message]
        details = [
            f"route={self.route}" if self.route else "",
            f"status={self.status_code}" if self.status_code is not None else "",
            f"request_id={self.request_id}" if self.request_id else "",
        ]
        detail = ", ".join(d for d in details if d)
        if detail:
            parts.append(f"({detail})")
        return " ".join(parts)


class RequestRejected(BarrackError):
    """Barrack refused the request for a reason the caller must fix."""


class InvalidRequest(RequestRejected):
    """400 or 422."""


class Unauthorized(RequestRejected):
    """401 or 403. ``fix``: where a person puts a valid key (the client's key source says)."""

    fix: str | None = None


class InsufficientCredits(RequestRejected):
    """402."""


class NotFound(RequestRejected):
    """404."""


class PreconditionFailed(BarrackError):
    """409: the resource's state (or a related one's) forbids the operation now."""


class CallsPaused(BarrackError):
    """Never sent: the task asked for no call at all (a paused object's pass reads only what the
    inventory holds)."""


class TransientError(BarrackError):
    """A fault that may pass by itself."""


class RateLimited(TransientError):
    """429. ``retry_after`` is in seconds: Barrack's ``Retry-After``, or, when it sent none, the
    client's own exponential backoff (see :class:`~barrack_operator.barrack.client.RetryPolicy`)."""

    def __init__(self, message: str, *, retry_after: float | None, route: str = "") -> None:
        self.told = retry_after is not None
        self.retry_after = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        super().__init__(message, route=route)


class ApiUnavailable(TransientError):
    """5xx, a timeout or a connection error. ``sent`` is False only when the request surely never
    reached Barrack (it could not connect), so a mutation can be repeated safely."""

    def __init__(self, message: str, *, sent: bool = True, route: str = "") -> None:
        self.sent = sent
        super().__init__(message, route=route)


class MalformedReply(ApiUnavailable):
    """Barrack answered 2xx with a body that is not JSON or not the contract's shape. For a
    mutation it may have acted, so it counts as sent."""


_BY_STATUS: dict[int, type[BarrackError]] = {
    400: InvalidRequest,
    422: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    402: InsufficientCredits,
    404: NotFound,
    409: PreconditionFailed,
}

DEFAULT_RETRY_AFTER = 1.0


def scrub(text: str, secret: str | None) -> str:
    """Truncate and remove the secret from text that came from outside."""
    if secret:
        text = text.replace(secret, "[redacted]")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "..."
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; None when there is none, or none that reads."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response, *, route: str, secret: str | None) -> BarrackError:
    """Map a non-2xx reply to the hierarchy. The one place that knows status codes."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = scrub(str(body.get("message") or response.reason_phrase or "no message"), secret)
    status = response.status_code
    error_code = str(body.get("error_code") or body.get("error_reason") or "")
    request_id = str(body.get("request_id", ""))
    error: BarrackError
    if status == 429:
        error = RateLimited(message, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    elif status >= 500:
        error = ApiUnavailable(message)
    else:
        error = _BY_STATUS.get(status, InvalidRequest)(message)
    error.route, error.status_code, error.error_code, error.request_id = route, status, error_code, request_id
    error.args = (error._describe(),)
    return error


@contextlib.contextmanager
def map_transport_errors(route: str) -> Iterator[None]:
    """Translate httpx's transport exceptions into :class:`ApiUnavailable`."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise ApiUnavailable(
            f"cannot connect to Barrack: {type(exc).__name__}", route=route, sent=False
        ) from None
    except httpx.TimeoutException as exc:
        raise ApiUnavailable(f"Barrack timed out: {type(exc).__name__}", route=route) from None
    except httpx.TransportError as exc:
        raise ApiUnavailable(
            f"transport error talking to Barrack: {type(exc).__name__}", route=route
        ) from None
