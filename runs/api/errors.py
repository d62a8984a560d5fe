"""Every API error has one shape, Azure's: ``{"error": {"code", "message", "target"}}``.

``message`` is one readable line; ``target`` names the field at fault when there is one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from runs.models import StudioError
from runs.query import QueryError


def error_body(
    code: str, message: str, target: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    if details:
        error["details"] = details
    return {"error": error}


def _size(n: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def too_large_body(size: int | None, limit: int, what: str) -> dict[str, Any]:
    """The 413 answer's body: it names the limit, so a client knows what to send instead."""
    got = f"the body is {size:,} bytes; " if size is not None else ""
    return error_body("RequestTooLarge", f"{got}{what} may be at most {_size(limit)}", "body", {"limitBytes": limit})


def _first_problem(detail: Any, path: str = "") -> tuple[str, str]:
    """The first (field path, message) in a DRF error detail, however nested."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        return _first_problem(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first_problem(detail[0], path)
    return path, str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, StudioError):
        return Response(error_body(exc.code, exc.message, exc.target, exc.details), status=exc.status)
    if isinstance(exc, QueryError):
        return Response(error_body("InvalidQuery", str(exc), "q"), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):  # request.body past DATA_UPLOAD_MAX_MEMORY_SIZE
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(too_large_body(None, limit, "a body (DATA_UPLOAD_MAX_MEMORY_SIZE)"), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        target, message = _first_problem(exc.detail)
        body = error_body("InvalidValue", f"{target}: {message}" if target else message, target or None)
    elif isinstance(exc, exceptions.ParseError):
        body = error_body("InvalidBody", str(exc.detail), "body")
    else:
        code = type(exc).__name__ if isinstance(exc, exceptions.APIException) else "Error"
        body = error_body(code, str(getattr(exc, "detail", exc)))
    response.data = body
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("NotFound", f"no API endpoint at {request.path}"), status=404)
