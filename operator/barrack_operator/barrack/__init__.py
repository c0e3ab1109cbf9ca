"""The Barrack API client: one routes table, wire models, one error hierarchy, rate limit and retries.

This package imports neither kopf nor the rest of the operator; the simulator may import its wire
contract (``routes`` and ``models``) and nothing else.
"""

from barrack_operator.barrack.client import BarrackClient
from barrack_operator.barrack.credentials import ApiKeySource
from barrack_operator.barrack.errors import (
    ApiUnavailable,
    BarrackError,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RequestRejected,
    TransientError,
    Unauthorized,
)

__all__ = [
    "ApiKeySource",
    "ApiUnavailable",
    "BarrackClient",
    "BarrackError",
    "InsufficientCredits",
    "InvalidRequest",
    "NotFound",
    "PreconditionFailed",
    "RateLimited",
    "RequestRejected",
    "TransientError",
    "Unauthorized",
]
