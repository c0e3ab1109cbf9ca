"""The refusals the simulator answers with, one class per status code of the contract."""

from __future__ import annotations


class SimError(Exception):
    status_code = 400
    error_code = "invalid_request"

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code


class Invalid(SimError):
    status_code = 400


class Unauthenticated(SimError):
    status_code = 401
    error_code = "unauthorized"


class NoCredits(SimError):
    status_code = 402
    error_code = "insufficient_credits"


class Missing(SimError):
    status_code = 404
    error_code = "not_found"


class Conflict(SimError):
    status_code = 409
    error_code = "precondition_failed"
