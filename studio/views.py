"""The web studio. Until the run pages land (issue 5), the home page points to what exists."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.defaults import page_not_found, server_error

from runs.api.errors import error_body, json_not_found


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """API clients get a JSON 404; browsers get the page."""
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return page_not_found(request, exception)


def server_failed(request: HttpRequest) -> HttpResponse:
    """API clients get a JSON 500, in the API's error shape; browsers get the page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("ServerError", "the server failed; the error is in its log"), status=500)
    return server_error(request)
