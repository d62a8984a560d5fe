"""Account pages: logging in, a workspace's members (Owners manage them) and the user's own API tokens.

Access is the rest of the studio's: a workspace someone is not a member of answers 404, a Reader or
Contributor sees the member list without its forms and gets 403 on posts, anonymous visitors are
sent to log in. Tokens are the user's own, whatever the workspace; someone else's token is a 404.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from runs.models import ApiToken, InvalidValue, Membership, Workspace
from studio import login_throttle
from studio.models import Preference
from studio.views import WorkspaceAccess, _get_workspace

LAST_OWNER_ERROR = "A workspace keeps at least one Owner: make someone else an Owner first."

# --- Logging in --------------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login page, throttled (studio/login_throttle.py): a locked-out address sees why and for
    how long before typing; repeated failures are answered after a pause. A refused login (any password)
    is answered by login_throttle.lockout_response, which axes puts in place of this view's answer."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.request.method == "GET":
            context["lockout"] = login_throttle.lockout_for(self.request)
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        login_throttle.pause_after_failure(self.request)
        return super().form_invalid(form)


login = LoginView.as_view()

# --- Members -----------------------------------------------------------------------------------------------


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.READER)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_username(self) -> Any:
        """The user itself, who must exist and not be a member yet (a role changes on its own form)."""
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"There is no user named “{username}”.")
        if self.workspace.memberships.filter(user=user).exists():
            raise forms.ValidationError(f"{username} is already a member; change their role in the list.")
        return user


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


def _get_owned_workspace(request: HttpRequest, name: str) -> WorkspaceAccess:
    """The workspace, if the user is one of its Owners: 404 for strangers, 403 for other members."""
    access = _get_workspace(request, name)
    if access.role != Membership.Role.OWNER:
        raise PermissionDenied(f"only an Owner of workspace {name!r} may manage its members")
    return access


def _get_membership(workspace: Workspace, username: str) -> Membership:
    membership = workspace.memberships.select_related("user").filter(user__username=username).first()
    if membership is None:
        raise Http404(f"{username!r} is not a member of {workspace.name!r}")
    return membership


def _render_members(
    request: HttpRequest, access: WorkspaceAccess, form: MemberAddForm, status: int = 200
) -> HttpResponse:
    context = {
        "access": access,
        "is_owner": access.role == Membership.Role.OWNER,
        "memberships": access.workspace.memberships.select_related("user").order_by("user__username"),
        "roles": Membership.Role.choices,
        "form": form,
    }
    return render(request, "studio/members.html", context, status=status)


@login_required
@require_GET
def member_list(request: HttpRequest, workspace: str) -> HttpResponse:
    access = _get_workspace(request, workspace)
    return _render_members(request, access, MemberAddForm(workspace=access.workspace))


@login_required
@require_POST
def member_add(request: HttpRequest, workspace: str) -> HttpResponse:
    access = _get_owned_workspace(request, workspace)
    form = MemberAddForm(request.POST, workspace=access.workspace)
    if not form.is_valid():
        return _render_members(request, access, form, status=400)
    user, role = form.cleaned_data["username"], form.cleaned_data["role"]
    access.workspace.add_member(user, role)
    messages.success(request, f"Added {user.username} as {role}.")
    return redirect("member_list", workspace=access.workspace.name)


@login_required
@require_POST
def member_role(request: HttpRequest, workspace: str, username: str) -> HttpResponse:
    access = _get_owned_workspace(request, workspace)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Choose a role: {', '.join(Membership.Role.values)}.")
        return redirect("member_list", workspace=access.workspace.name)
    role = form.cleaned_data["role"]
    try:
        _get_membership(access.workspace, username).change_role(role)
    except InvalidValue:
        messages.error(request, f"{username} is the last Owner. {LAST_OWNER_ERROR}")
        return redirect("member_list", workspace=access.workspace.name)
    messages.success(request, f"{username} is now {role}.")
    return redirect("member_list", workspace=access.workspace.name)


@login_required
@require_POST
def member_remove(request: HttpRequest, workspace: str, username: str) -> HttpResponse:
    access = _get_owned_workspace(request, workspace)
    membership = _get_membership(access.workspace, username)
    try:
        membership.leave()
    except InvalidValue:
        messages.error(request, f"{username} is the last Owner and cannot be removed. {LAST_OWNER_ERROR}")
        return redirect("member_list", workspace=access.workspace.name)
    messages.success(request, f"Removed {username} from {access.workspace.name}.")
    if membership.user_id == request.user.pk:  # an Owner who left no longer sees the page
        return redirect("home")
    return redirect("member_list", workspace=access.workspace.name)


# --- API tokens --------------------------------------------------------------------------------------------


class TokenForm(forms.Form):
    name = forms.CharField(max_length=ApiToken._meta.get_field("name").max_length)


def _first_access(request: HttpRequest) -> WorkspaceAccess | None:
    """The user's default (else first) workspace, for the nav and the attach example; None without one."""
    names = sorted(Membership.objects.filter(user=request.user).values_list("workspace__name", flat=True))
    if not names:
        return None
    return _get_workspace(request, "default" if "default" in names else names[0])


def _render_tokens(
    request: HttpRequest, form: TokenForm, *, created: ApiToken | None = None, key: str = "", status: int = 200
) -> HttpResponse:
    access = _first_access(request)
    context: dict[str, Any] = {
        "access": access,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at", "-pk"),
        "form": form,
        "created": created,
        "key": key,
    }
    if key:
        url = request.build_absolute_uri("/").rstrip("/")
        workspace = access.workspace.name if access else "WORKSPACE"
        context["attach_command"] = shlex.join(
            ["studio", "folder", "attach", "-w", workspace, "--url", url, "--token", key]
        )
        # The same body as runs.sdk.workspace.write_config writes.
        context["config_json"] = json.dumps({"url": url, "workspace": workspace, "token": key}, indent=2)
    return render(request, "studio/tokens.html", context, status=status)


@never_cache
@login_required
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    return _render_tokens(request, TokenForm())


@never_cache  # the response holds the new key: no cache, proxy or back-button copy of it
@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Make a token and show its key on this response only: only its hash is stored."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _render_tokens(request, form, status=400)
    token, key = ApiToken.objects.create_token(request.user, form.cleaned_data["name"])
    return _render_tokens(request, TokenForm(), created=token, key=key)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.delete()
    messages.success(request, f"Revoked the token “{token.name}”: it no longer works.")
    return redirect("token_list")


# --- Preferences -------------------------------------------------------------------------------------------


@login_required
@require_POST
def theme_set(request: HttpRequest) -> HttpResponse:
    """The top bar's colour theme toggle: remember the choice and go back to the page it was made on.
    htmx's request gets no page: the choice comes back in HX-Trigger and static/theme.js applies it."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("home")
    try:
        preference = Preference.set_theme(request.user, request.POST.get("theme", ""))
    except ValueError as error:
        messages.error(request, str(error))
        return HttpResponseClientRedirect(back) if request.htmx else redirect(back)
    if request.htmx:
        return trigger_client_event(HttpResponse(status=204), "studio:theme", {"value": preference.theme})
    return redirect(back)
