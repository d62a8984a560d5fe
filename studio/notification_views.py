"""The Notifications page of a workspace: its alert rules (and the user's own watches on single
runs), a form to make a rule, and what the rules delivered; plus the "Tell me when this run ends"
button on a run's page.

Access is the rest of the studio's: a workspace someone is not a member of answers 404, a Reader
sees the rules and the deliveries but no form or delete buttons and gets 403 on those posts (a
Reader may still watch runs for themselves, and stop). Which rules and deliveries a user sees is
decided in one place, ``AlertRule.objects.visible_to``; what a valid rule is, in
``AlertRule.create_rule``, the same checks and messages as the REST API's.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from runs.models import AlertRule, Delivery, InvalidValue, Run, StudioError, Workspace
from studio.views import HtmxHttpRequest, WorkspaceAccess, _get_run, _get_workspace

DELIVERIES_PER_PAGE = 25

# The model names the field at fault as the API spells it; a few are spelt otherwise in the form.
_FORM_FIELD = {"webhookUrl": "webhook_url"}


class RuleForm(forms.Form):
    """Parses the create-a-rule form. The checks themselves are ``AlertRule.create_rule``'s, so the
    page and the API refuse the same rules with the same messages; every field is optional here."""

    name = forms.CharField(required=False, widget=forms.TextInput(attrs={"maxlength": 100}))
    experiments = forms.MultipleChoiceField(required=False, widget=forms.SelectMultiple(attrs={"size": 6}))
    statuses = forms.MultipleChoiceField(
        required=False, choices=Run.Status.choices, widget=forms.CheckboxSelectMultiple
    )
    members = forms.MultipleChoiceField(required=False, widget=forms.SelectMultiple(attrs={"size": 6}))
    emails = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    webhook_url = forms.CharField(required=False, label="Webhook URL", widget=forms.URLInput)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = workspace.experiments.order_by("name").values_list("name", flat=True)
        self.fields["experiments"].choices = [(name, name) for name in names]
        memberships = workspace.memberships.select_related("user").order_by("user__username")
        self.fields["members"].choices = [
            (m.user.username, m.user.username if m.user.email else f"{m.user.username} (no email address)")
            for m in memberships
        ]

    def clean_emails(self) -> list[str]:
        """One address a line, or separated by commas, semicolons or spaces."""
        return [address for address in re.split(r"[\s,;]+", self.cleaned_data["emails"]) if address]

    def add_model_error(self, error: InvalidValue) -> None:
        """Show the model's refusal next to the field it names (above the form if it names none)."""
        field = _FORM_FIELD.get(error.target or "", error.target)
        self.add_error(field if field in self.fields else None, error.message)


def _get_writable_workspace(request: HttpRequest, name: str) -> WorkspaceAccess:
    """The workspace, if the user may make and delete its rules: 404 for strangers, 403 for Readers."""
    access = _get_workspace(request, name)
    if not access.can_write:
        raise PermissionDenied("your role here is Reader: alert rules are made by Contributors and Owners")
    return access


def _deliveries_context(request: HttpRequest, access: WorkspaceAccess) -> dict[str, Any]:
    """The Deliveries section: the visible rules' deliveries, newest first, a page at a time."""
    deliveries = Delivery.objects.visible_to(request.user, access.workspace)
    page = Paginator(deliveries.select_related("rule", "event__run"), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return {"deliveries": page, "failed_count": deliveries.filter(state=Delivery.State.FAILED).count()}


def _rules_context(request: HttpRequest, access: WorkspaceAccess) -> dict[str, Any]:
    """The workspace's rules and the user's watches, each with whether this user may delete it."""
    rules = (
        AlertRule.objects.visible_to(request.user, access.workspace)
        .select_related("run", "created_by")
        .prefetch_related("experiments", "members")
    )
    rows = [(rule, rule.can_delete(request.user, access.role)) for rule in rules]
    return {
        "rules": [(rule, deletable) for rule, deletable in rows if rule.run_id is None],
        "watches": [(rule, deletable) for rule, deletable in rows if rule.run_id is not None],
    }


def _render_page(
    request: HttpRequest,
    access: WorkspaceAccess,
    form: RuleForm | None = None,
    *,
    created: AlertRule | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None and access.can_write:
        form = RuleForm(workspace=access.workspace)
    context: dict[str, Any] = {
        "access": access,
        "form": form if access.can_write else None,  # Readers get no form
        "created": created,
        **_rules_context(request, access),
        **_deliveries_context(request, access),
    }
    return render(request, "studio/notifications.html", context, status=status)


@login_required
@require_GET
def notification_list(request: HtmxHttpRequest, workspace: str) -> HttpResponse:
    """The page; htmx (the Deliveries pager) asks for the Deliveries section alone."""
    access = _get_workspace(request, workspace)
    if request.htmx and not request.htmx.boosted:
        context = {"access": access, **_deliveries_context(request, access)}
        return render(request, "studio/notifications.html#deliveries", context)
    return _render_page(request, access)


@never_cache  # the answer to a webhook rule holds its secret: no cache, proxy or back-button copy of it
@login_required
@require_POST
def rule_create(request: HttpRequest, workspace: str) -> HttpResponse:
    """Make a rule. A webhook's signing secret is shown on this response only; a refused rule comes
    back in the form as typed, with the reason next to the field at fault."""
    access = _get_writable_workspace(request, workspace)
    form = RuleForm(request.POST, workspace=access.workspace)
    if form.is_valid():
        data = form.cleaned_data
        try:
            rule = AlertRule.create_rule(
                access.workspace,
                by=request.user,
                name=data["name"],
                experiments=data["experiments"],
                statuses=data["statuses"],
                members=data["members"],
                emails=data["emails"],
                webhook_url=data["webhook_url"],
            )
        except InvalidValue as error:
            form.add_model_error(error)
        else:
            if rule.webhook_secret:
                return _render_page(request, access, created=rule)
            messages.success(request, f"Created the rule “{rule}”.")
            return redirect("notification_list", workspace=access.workspace.name)
    return _render_page(request, access, form, status=400)


@login_required
@require_POST
def rule_delete(request: HtmxHttpRequest, workspace: str, rule_id: int) -> HttpResponse:
    """Delete a rule (Contributors and Owners) or one's own watch; its deliveries go with it. htmx
    gets the rules section again, and the Deliveries section out of band."""
    access = _get_workspace(request, workspace)
    rule = AlertRule.objects.visible_to(request.user, access.workspace).filter(pk=rule_id).first()
    if rule is None:
        raise Http404(f"no alert rule {rule_id}")
    if not rule.can_delete(request.user, access.role):
        raise PermissionDenied("your role here is Reader: alert rules are deleted by Contributors and Owners")
    label = str(rule)
    rule.delete()
    if request.htmx:
        context = {
            "access": access,
            "oob": True,
            **_rules_context(request, access),
            **_deliveries_context(request, access),
        }
        return render(request, "studio/notifications.html#rules", context)
    messages.success(request, f"Deleted “{label}”.")
    return redirect("notification_list", workspace=access.workspace.name)


@login_required
@require_http_methods(["GET", "POST"])
def run_watch(request: HtmxHttpRequest, workspace: str, run_id: str) -> HttpResponse:
    """The "Tell me when this run ends" button. The run's page loads it with htmx (GET); a POST
    watches the run, or with ``stop`` stops watching. Any member may watch, for themselves only."""
    access, run = _get_run(request, workspace, run_id)
    error = ""
    if request.method == "POST":
        if request.POST.get("stop"):
            AlertRule.objects.filter(run=run, created_by=request.user).delete()
        else:
            try:
                AlertRule.watch(run, request.user)
            except StudioError as refusal:  # no email address on the account, or the run just ended
                error = refusal.message
        if not request.htmx:
            if error:
                messages.error(request, error)
            return redirect("run_detail", workspace=access.workspace.name, run_id=run.run_id)
    elif not request.htmx:  # the button alone is no page
        return redirect("run_detail", workspace=access.workspace.name, run_id=run.run_id)
    watching = AlertRule.objects.filter(run=run, created_by=request.user).exists()
    context = {"access": access, "run": run, "watching": watching, "error": error}
    # 200 even for a refusal: htmx swaps in only 2xx answers, and the message is the answer.
    return render(request, "studio/watch_button.html", context)
