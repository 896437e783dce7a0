"""Domain errors. The HTTP layer turns each into problem+json (RFC 9457)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One fault in the input: where (a dotted path, or a CSV row) and what."""

    field: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        return out


class VigilaError(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(VigilaError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"

    @classmethod
    def on(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class NotFound(VigilaError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(VigilaError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Unauthenticated(VigilaError):
    status = 401
    title = "Authentication required"
    slug = "unauthenticated"


class Forbidden(VigilaError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class PurposeRequired(VigilaError):
    """Personal data is read only for a stated purpose (D.Lgs. 51/2018)."""

    status = 428
    title = "Purpose required"
    slug = "purpose-required"


class UnsupportedMediaType(VigilaError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class TooManyAttempts(VigilaError):
    status = 429
    title = "Too many attempts"
    slug = "too-many-attempts"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
