"""Typed errors the SDK raises. Each carries the server's message, code and (where one is at fault)
the field, so ``except PropertyConflictException as e: e.key, e.existing, e.new`` works."""

from __future__ import annotations

from typing import Any


class StudioException(Exception):
    """Base of every error the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.target = target
        self.details = details or {}


class UserErrorException(StudioException):
    """The request was refused because of what it asked (Azure ML's name for 4xx errors)."""


class AuthenticationException(UserErrorException):
    """No valid API token (HTTP 401)."""


class PermissionDeniedException(UserErrorException):
    """Your role does not allow this (HTTP 403): a Reader writing, for example."""


class NotFoundException(UserErrorException):
    """No such workspace, experiment, run or file that you can see (HTTP 404)."""


class ConflictException(UserErrorException):
    """The request conflicts with the run's state (HTTP 409): an illegal status change, metrics for
    an ended run, a file that exists."""


class PropertyConflictException(ConflictException):
    """A write-once property already holds another value."""

    @property
    def key(self) -> str | None:
        return self.details.get("key")

    @property
    def existing(self) -> str | None:
        return self.details.get("existing")

    @property
    def new(self) -> str | None:
        return self.details.get("new")


class ServiceException(StudioException):
    """The server failed (5xx) or could not be reached, after retries."""


class ActivityFailedException(StudioException):
    """wait_for_completion(raise_on_error=True) on a run that failed."""


_BY_STATUS: dict[int, type[StudioException]] = {
    401: AuthenticationException,
    403: PermissionDeniedException,
    404: NotFoundException,
    409: ConflictException,
}


def from_response(status_code: int, body: Any) -> StudioException:
    """The exception for an error response in the API's shape ``{"error": {code, message, target}}``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": str(body)[:500] if body else f"HTTP {status_code}"}
    code = error.get("code")
    if code == "PropertyConflict":
        cls: type[StudioException] = PropertyConflictException
    elif status_code >= 500:
        cls = ServiceException
    else:
        cls = _BY_STATUS.get(status_code, UserErrorException)
    return cls(
        error.get("message") or f"HTTP {status_code}",
        status_code=status_code,
        code=code,
        target=error.get("target"),
        details=error.get("details"),
    )
