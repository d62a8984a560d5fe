"""Login throttling, on django-axes (settings: AXES_*, LOGIN_*).

axes counts failed logins per client address and per account and refuses logins once either reaches
the limit, until the cool-off has passed. Here: the page that explains a refusal (the login page,
with when to try again and what to do), a short pause before answering repeated failures, and the
reset that a successful login makes, of its own account's failures only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit, get_lockout_parameters
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.db.models import Max, Sum
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


@dataclass(frozen=True)
class Lockout:
    """A refusal of logins from this client or to this account, and when it ends."""

    ends: datetime
    by_address: bool = True  # too many failures from the client's address
    by_account: bool = False  # too many failures for the account

    @property
    def seconds_left(self) -> int:
        return max(1, math.ceil((self.ends - timezone.now()).total_seconds()))

    @property
    def wait(self) -> str:
        """How long, as a person says it: "40 seconds", "1 minute", "15 minutes"."""
        seconds = self.seconds_left
        if seconds < 60:
            return f"{seconds} second{'s' if seconds != 1 else ''}"
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_for(request: HttpRequest, credentials: dict[str, Any] | None = None) -> Lockout | None:
    """The lockout that refuses this request's login, if any: the client's address, or the account in
    ``credentials``, has failed the limit within the cool-off. It ends a cool-off after the last failure
    that counts (a try during the lockout does not count: AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT)."""
    AxesProxyHandler.update_request(request)
    handler = AxesProxyHandler.get_implementation()
    limit = get_failure_limit(request, credentials)
    cool_off = get_cool_off(request) or timedelta(0)
    ends, reasons = None, set()
    # One queryset per lockout parameter, in AXES_LOCKOUT_PARAMETERS' order, within the cool-off window.
    parameters = get_lockout_parameters(request, credentials)
    for parameter, attempts in zip(parameters, handler.get_user_attempts(request, credentials), strict=True):
        found = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (found["failures"] or 0) >= limit:
            lifted = found["last"] + cool_off
            ends = lifted if ends is None else max(ends, lifted)
            reasons.add(parameter if isinstance(parameter, str) else tuple(parameter))
    if ends is None:
        return None
    return Lockout(ends, by_address="ip_address" in reasons, by_account="username" in reasons)


def lockout_response(request: HttpRequest, response: HttpResponse | None, credentials: dict[str, Any] | None) -> Any:
    """The login page, refusing: axes calls this (AXES_LOCKOUT_CALLABLE) instead of the view's answer
    whenever a login is refused, whatever the password. 429, as axes answers by default."""
    username = get_client_username(request, credentials) or ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", request.GET.get("next", "")),
        # axes refused, so there is a lockout; were it lifted this very moment, say the cool-off.
        "lockout": lockout_for(request, credentials) or Lockout(timezone.now() + get_cool_off(request)),
        "locked_username": username,
    }
    return render(request, "registration/login.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


def pause_after_failure(request: HttpRequest) -> None:
    """Answer a repeated failed login only after LOGIN_FAILURE_DELAY seconds: the first typo costs nothing,
    guesses before the lockout cost time. It holds one server thread, at most limit - 2 times per client
    and account in a cool-off (the refusals after the limit are answered at once)."""
    failures = getattr(request, "axes_failures_since_start", None) or 0
    if failures > 1 and not getattr(request, "axes_locked_out", False):
        time.sleep(settings.LOGIN_FAILURE_DELAY)


@receiver(user_logged_in, dispatch_uid="studio.login_throttle.reset_account")
def reset_account(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A successful login forgets its account's failures, from every address. Not AXES_RESET_ON_SUCCESS:
    that also forgets every failure from the client's address, so someone guessing other accounts
    could start over by logging in to their own between guesses."""
    reset(username=user.get_username())
