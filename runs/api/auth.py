"""API token authentication for the SDK and CLI: ``Authorization: Bearer <key>``."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from runs.models import ApiToken


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        token = ApiToken.objects.authenticate(header[1])
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API token")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"
