from __future__ import annotations

from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Web studio"

    def ready(self) -> None:
        from studio import login_throttle  # noqa: F401 (connects its receiver)
