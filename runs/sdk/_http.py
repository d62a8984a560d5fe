"""The SDK's HTTP client: token auth, JSON, retries with backoff, typed errors."""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from runs.sdk.exceptions import ServiceException, from_response

log = logging.getLogger("runs.sdk")

# Worth another try: the server is restarting, overloaded or briefly unreachable.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def backoff(attempt: int, *, cap: float = 8.0) -> float:
    """Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s, ... up to ``cap``."""
    return min(cap, 0.25 * 2**attempt) * random.uniform(0.75, 1.25)


class Client:
    """Talks to one studio server as one user."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, retries: int = 6) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "run-studio-sdk/0.1"

    def api_url(self, path: str) -> str:
        return f"{self.url}/api/v1/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: Any = None,
        stream: bool = False,
        retry_unsent_only: bool | None = None,
        retries: int | None = None,
    ) -> requests.Response:
        """Send a request; raise the typed exception for an error response.

        Connection failures, 429 and 5xx are retried with backoff. A POST is retried after a timeout
        or a 5xx only when ``retry_unsent_only`` is False (the caller made it idempotent, as metric
        batches are); otherwise only when the request surely never reached the server.
        """
        if retry_unsent_only is None:
            retry_unsent_only = method == "POST"
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            if attempt and hasattr(data, "seek"):
                data.seek(0)
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method,
                    self.api_url(path),
                    json=json,
                    params=params,
                    data=data,
                    stream=stream,
                    timeout=self.timeout,
                )
            except requests.ConnectionError as error:
                maybe_sent = not _never_sent(error)
                if last or (retry_unsent_only and maybe_sent) or (data is not None and not hasattr(data, "seek")):
                    raise ServiceException(f"cannot reach the studio at {self.url}: {error}") from error
                log.info("studio unreachable (%s); retrying", error)
            except requests.Timeout as error:
                if last or retry_unsent_only or (data is not None and not hasattr(data, "seek")):
                    raise ServiceException(f"the studio at {self.url} did not answer in time") from error
            else:
                if response.status_code < 400:
                    return response
                if (
                    response.status_code not in RETRY_STATUSES
                    or last
                    or (retry_unsent_only and response.status_code != 429)
                ):
                    raise from_response(response.status_code, _json_or_text(response))
                retry_after = response.headers.get("Retry-After", "").strip()
                if retry_after.isdigit():
                    time.sleep(min(float(retry_after), 60.0))
                    continue
            time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return _json_or_none(self.request("POST", path, json=json, **kwargs))

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return _json_or_none(self.request("PUT", path, json=json, **kwargs))

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return _json_or_none(self.request("PATCH", path, json=json, **kwargs))

    def delete(self, path: str, **kwargs: Any) -> Any:
        return _json_or_none(self.request("DELETE", path, **kwargs))

    def download(self, path: str, target: Path) -> Path:
        """Stream a response body to ``target``. It is written beside the target and renamed, so an
        interrupted download leaves no half file behind."""
        target.parent.mkdir(parents=True, exist_ok=True)
        response = self.request("GET", path, stream=True)
        with response, tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False) as partial:
            for chunk in response.iter_content(chunk_size=1024 * 1024):
                partial.write(chunk)
        os.replace(partial.name, target)
        return target

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Iterate over the items of a paginated list, fetching pages as needed."""
        params = dict(params or {})
        page = 1
        while True:
            body = self.get(path, params={**params, "page": page})
            yield from body["results"]
            if not body.get("next"):
                return
            page += 1


def _never_sent(error: requests.ConnectionError) -> bool:
    """True when the connection itself failed (refused, unresolvable, connect timeout), so the
    server cannot have seen the request and sending it again is safe."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def path_quote(value: str) -> str:
    return quote(value, safe="/")


def _json_or_none(response: requests.Response) -> Any:
    return response.json() if response.content else None


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
