"""Domain errors. Each maps to one HTTP status and one stable ``error`` reason (contract §1).

Services raise these; ``highseas.api_errors`` renders every one of them, and every framework
error, in the single error envelope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class HighseasError(Exception):
    status_code: int = 500
    reason: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        errors: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.errors = {field: list(msgs) for field, msgs in (errors or {}).items()}


class Unauthenticated(HighseasError):
    status_code = 401
    reason = "unauthenticated"


class Forbidden(HighseasError):
    status_code = 403
    reason = "forbidden"


class NotFound(HighseasError):
    status_code = 404
    reason = "not_found"


class Conflict(HighseasError):
    status_code = 409
    reason = "conflict"


class Gone(HighseasError):
    status_code = 410
    reason = "gone"


class PayloadTooLarge(HighseasError):
    status_code = 413
    reason = "payload_too_large"


class ValidationFailed(HighseasError):
    """A rule that pydantic cannot express (it needs the database, or several fields)."""

    status_code = 422
    reason = "validation_failed"

    @classmethod
    def field(cls, field: str, message: str, *, reason: str | None = None) -> ValidationFailed:
        return cls(message, reason=reason, errors={field: [message]})


class ServiceUnavailable(HighseasError):
    status_code = 503
    reason = "service_unavailable"
