"""Set up a studio for first use, idempotently: an admin user, the ``default`` workspace, an API
token, and the SDK config file that ``Workspace.from_config()`` reads."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from runs.models import ApiToken, Membership, Workspace
from runs.sdk.workspace import write_config


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", default=".studio/config.json", help="where to write the SDK config")
        parser.add_argument("--url", default=settings.STUDIO_BASE_URL, help="the studio's address for the SDK")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", help="set this password (default: keep it, or generate one)")
        parser.add_argument("--workspace", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()  # noqa: N806
        username, password = options["username"], options["password"]
        config_path = Path(options["config"])
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            generated = None
            if user is None:
                generated = password is None
                password = password or secrets.token_urlsafe(12)
                user = User.objects.create_superuser(username, f"{username}@localhost", password)
                self.stdout.write(f"Created the admin user {username!r}.")
            elif password:
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(f"Set the password of {username!r}.")
            workspace, _ = Workspace.objects.get_or_create(name=options["workspace"])
            if workspace.role_of(user) != Membership.Role.OWNER:
                workspace.add_member(user, Membership.Role.OWNER)
            token = self._existing_token(config_path, user, options["url"], workspace.name)
            if token is None:
                _, token = ApiToken.objects.create_token(user, _token_name(config_path))
                write_config(config_path, url=options["url"], token=token, workspace=workspace.name)
                self.stdout.write(f"Wrote the SDK config {config_path} (workspace {workspace.name!r}).")
            else:
                self.stdout.write(f"Kept the SDK config {config_path}: its token still works.")
        if generated:
            self.stdout.write(self.style.WARNING(f"Log in as {username!r} with the password: {password}"))

    def _existing_token(self, path: Path, user: Any, url: str, workspace: str) -> str | None:
        """The config's token, if the file is for this studio, user and workspace and still valid."""
        if not path.exists():
            return None
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CommandError(f"{path} is not a readable JSON config: {error}") from error
        token = config.get("token")
        if config.get("url") != url or config.get("workspace") != workspace or not token:
            return None
        found = ApiToken.objects.authenticate(token)
        return token if found is not None and found.user == user else None


def _token_name(config_path: Path) -> str:
    """ "bootstrap (<config path>)", shortened from the left to fit a token's name: the file's end of the
    path is what tells one config from another."""
    name, limit = f"bootstrap ({config_path})", ApiToken._meta.get_field("name").max_length
    if len(name) <= limit:
        return name
    return f"bootstrap (…{str(config_path)[-(limit - len('bootstrap (…)')) :]})"
