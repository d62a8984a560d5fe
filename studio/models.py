from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince

from runs.models import Membership, Workspace


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


# --- Saved views of the runs table ---------------------------------------------------------------------------
# They moved here from the runs app (they are the studio's UI state, not run data) without changing
# their tables: db_table keeps the runs app's names (runs/migrations/0011, studio/migrations/0002).


class SavedViewQuerySet(models.QuerySet):
    def visible_to(self, user: Any, workspace: Workspace) -> SavedViewQuerySet:
        """A workspace's shared views and the user's own private ones (never another's private one)."""
        return self.filter(workspace=workspace).filter(Q(shared=True) | Q(owner=user))


class SavedView(models.Model):
    """A named state of the runs table: private to its owner, or shared with the workspace, where
    Contributors and Owners may change it. ``params`` holds the table's URL parameters as they were
    (``RunListState.to_params()``: search, sort, columns, child runs, runs picked for comparing and
    every filter control), so opening the view gives back exactly the table that was saved."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="saved_views")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=100)
    shared = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = SavedViewQuerySet.as_manager()

    class Meta:
        db_table = "runs_savedview"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "owner", "name"], name="runs_savedview_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def can_change(self, user: Any, role: str | None) -> bool:
        """The owner always; for a shared view, any Contributor or Owner of the workspace."""
        return self.owner_id == user.pk or (self.shared and role in Membership.WRITE_ROLES)

    @property
    def compare(self) -> list[str]:
        """The run ids picked for comparing when the view was saved."""
        return [r for r in str(self.params.get("compare", "")).split(",") if r]

    @property
    def changed_ago(self) -> str:
        """When it was last changed, for reading: "just now", "3 hours ago"."""
        if timezone.now() - self.updated_at < dt.timedelta(minutes=1):
            return "just now"
        return f"{timesince(self.updated_at, depth=1)} ago"

    @property
    def changed_by_other(self) -> bool:
        """Whether someone other than the owner changed it last (the list says who)."""
        return self.changed_by_id is not None and self.changed_by_id != self.owner_id


class DefaultView(models.Model):
    """The view a user's runs table opens with, per workspace."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    view = models.ForeignKey(SavedView, models.CASCADE, related_name="+")

    class Meta:
        db_table = "runs_defaultview"
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="runs_defaultview_unique_user")]
