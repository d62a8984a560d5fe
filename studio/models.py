from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Preference(models.Model):
    """A user's settings for the studio's pages (today only the colour theme)."""

    class Theme(models.TextChoices):
        AUTO = "auto", "Auto"
        LIGHT = "light", "Light"
        DARK = "dark", "Dark"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="studio_preference")
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.AUTO)

    def __str__(self) -> str:
        return f"{self.user}: {self.theme}"

    @classmethod
    def theme_for(cls, user: Any) -> str:
        """The user's theme; "auto" (follow the OS) for anonymous users and users who never chose one."""
        if not getattr(user, "is_authenticated", False):
            return cls.Theme.AUTO
        theme = cls.objects.filter(user=user).values_list("theme", flat=True).first()
        return theme or cls.Theme.AUTO

    @classmethod
    def set_theme(cls, user: Any, theme: str) -> Preference:
        """Remember the user's theme; ValueError names the choices when it is not one of them."""
        if theme not in cls.Theme.values:
            raise ValueError(f"Unknown theme {theme!r}: choose one of {', '.join(cls.Theme.values)}.")
        preference, _ = cls.objects.update_or_create(user=user, defaults={"theme": theme})
        return preference
