"""Checks on API requests made before any view reads them.

- Each operation takes bodies up to a limit (README, "The REST API"): JSON bodies ``API_JSON_MAX_MB``, run
  files and images ``RUN_FILE_MAX_MB``, snapshots ``SNAPSHOT_MAX_MB``, log chunks ``LOG_CHUNK_MAX_BYTES``. A
  larger one is answered 413 with the usual JSON error body naming the limit, unread: Django reads no more
  than the Content-Length a request declares, so checking that is enough.
- PostgreSQL text cannot hold NUL, so one in a path or query parameter failed the lookup (a 500 there,
  while SQLite answered 404), in the API and the studio's pages alike. No name holds one: 400 naming the
  parameter. (Bodies: runs/api/parsers.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from runs.api.errors import error_body, too_large_body
from runs.validation import LOG_CHUNK_MAX_BYTES


def body_limit(url_name: str | None) -> tuple[int, str]:
    """The largest body an API operation takes, and what it is called."""
    if url_name == "api-run-snapshot":
        return settings.SNAPSHOT_MAX_BYTES, "a snapshot (SNAPSHOT_MAX_MB)"
    if url_name in ("api-run-file", "api-run-images"):
        return settings.RUN_FILE_MAX_BYTES, "a run file (RUN_FILE_MAX_MB)"
    if url_name == "api-run-log":
        return LOG_CHUNK_MAX_BYTES, "a log chunk"
    return settings.API_JSON_MAX_BYTES, "a JSON body (API_JSON_MAX_MB)"


def _nul_parameter(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    for name, value in kwargs.items():
        if "\x00" in str(value):
            return name
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "")
    return None


class ApiRequestGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        url_name = request.resolver_match.url_name if request.resolver_match else None
        api = (url_name or "").startswith("api-")
        if api:
            try:
                size = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                size = 0  # Django reads such a body as empty
            limit, what = body_limit(url_name)
            if size > limit:
                return JsonResponse(too_large_body(size, limit, what), status=413)
        # The studio's pages look names up too (a run id in the path, ?runs= to compare).
        if (name := _nul_parameter(request, kwargs)) is not None:
            message = f"{name} must not contain control characters (NUL)"
            if api:
                return JsonResponse(error_body("InvalidValue", message, name), status=400)
            return HttpResponseBadRequest(f"{message}: remove it from the address.", content_type="text/plain")
        return None
