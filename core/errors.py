"""Our own exceptions: each carries a stable `code` that the API turns into problem+json."""

from __future__ import annotations


class TongguanError(Exception):
    """Base of every expected error; `code` is stable, `detail` is for staff and logs."""

    status = 400

    def __init__(self, code: str, detail: str, *, errors: list[dict] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or []


class ValidationFailed(TongguanError):
    status = 422


class NotFoundError(TongguanError):
    status = 404


class ConflictError(TongguanError):
    status = 409


class Unauthenticated(TongguanError):
    """No valid credentials: the API answers 401 with `WWW-Authenticate: Bearer`."""

    status = 401


class PermissionDenied(TongguanError):
    status = 403


class BatchTooLarge(TongguanError):
    """More items in one batch than allowed: refused whole, nothing stored."""

    status = 413
