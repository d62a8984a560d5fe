"""The SDK's HTTP client: token auth, JSON, retries with backoff, typed errors.

Every call is safe to send again, and is sent again when its connection fails or times out: reads,
PUTs and PATCHes are idempotent, and every POST carries an ``Idempotency-Key`` (one per call, the
same on each attempt) that the studio uses to make it happen once. Kept-alive connections are not
reused once idle for ``IDLE_CONNECTION_SECONDS``: the server closes them soon after (gunicorn after
2 s), and a request sent as it does so fails with "Connection reset by peer".
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter

from runs.sdk.exceptions import ServiceException, from_response

log = logging.getLogger("runs.sdk")

# Worth another try: the server is restarting, overloaded or briefly unreachable.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


# The connection broke or timed out, so whether the server acted is unknown.
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

# Half of gunicorn's default keep-alive (2 s), which it enforces on a loop of about a second.
IDLE_CONNECTION_SECONDS = 1.0


def backoff(attempt: int, *, cap: float = 8.0) -> float:
    """Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s, ... up to ``cap``."""
    return min(cap, 0.25 * 2**attempt) * random.uniform(0.75, 1.25)


class _FreshHTTPConnectionPool(urllib3.HTTPConnectionPool):
    """A pool that closes a kept-alive connection idle too long instead of reusing it; the request
    then opens a new one. urllib3 itself drops only connections whose close it has already seen."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        idle_since = getattr(conn, "studio_idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > IDLE_CONNECTION_SECONDS:
            conn.close()
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.studio_idle_since = time.monotonic()
        super()._put_conn(conn)


class _FreshHTTPSConnectionPool(_FreshHTTPConnectionPool, urllib3.HTTPSConnectionPool):
    pass


class _FreshConnectionsAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _FreshHTTPConnectionPool, "https": _FreshHTTPSConnectionPool}


class Client:
    """Talks to one studio server as one user. Safe to share between threads."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0, retries: int = 8) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries  # with backoff, about 30 s of trying: time for the server to restart
        self.session = requests.Session()
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _FreshConnectionsAdapter())
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

        A broken connection or a timeout is retried with backoff, as is 429. A 5xx is retried for
        everything but a POST, whose 5xx is the studio's answer to it (a POST sent again is answered
        from its Idempotency-Key, with the outcome, not that answer), unless a reverse proxy gave it
        (``_from_a_gateway``). ``retry_unsent_only=True``: a
        request the studio does not make idempotent, sent again only when it surely never arrived;
        ``False``: a 5xx is retried too (metric batches, whose body carries their key).
        """
        retry_5xx = method != "POST" if retry_unsent_only is None else not retry_unsent_only
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else None
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
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                )
            except TRANSPORT_ERRORS as error:
                unsafe = retry_unsent_only and not _never_sent(error)
                if last or unsafe or (data is not None and not hasattr(data, "seek")):
                    if isinstance(error, requests.Timeout) and not isinstance(error, requests.ConnectTimeout):
                        raise ServiceException(f"the studio at {self.url} did not answer in time") from error
                    raise ServiceException(f"cannot reach the studio at {self.url}: {error}") from error
                log.info("%s %s failed (%s); retrying", method, path, error)
            else:
                if response.status_code < 400:
                    return response
                keyed_post = method == "POST" and retry_unsent_only is None
                retry = (
                    response.status_code == 429
                    or (retry_5xx and response.status_code in RETRY_STATUSES)
                    or (keyed_post and _from_a_gateway(response))
                )
                if not retry or last:
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

    def download(self, path: str, target: Path, params: dict[str, Any] | None = None) -> Path:
        """Stream a response body to ``target``. It is written beside the target and renamed, so an
        interrupted download leaves no half file behind; one cut off midway starts again."""
        target.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(self.retries + 1):
            response = self.request("GET", path, params=params, stream=True)
            with response, tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False) as partial:
                try:
                    for chunk in response.iter_content(chunk_size=1024 * 1024):
                        partial.write(chunk)
                except TRANSPORT_ERRORS as error:
                    partial.close()
                    os.unlink(partial.name)
                    if attempt == self.retries:
                        raise ServiceException(f"the download from {self.url} broke off: {error}") from error
                    log.info("GET %s broke off (%s); downloading again", path, error)
                    time.sleep(backoff(attempt))
                    continue
            os.replace(partial.name, target)
            return target
        raise AssertionError("unreachable")

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


def _never_sent(error: requests.RequestException) -> bool:
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


def _from_a_gateway(response: requests.Response) -> bool:
    """A reverse proxy's 502/504, or a 503 that is not the studio's own error: the studio restarting or
    unreachable behind it, so it may never have seen the request (a keyed POST is sent again). The
    studio's own 503 (a broker that is down) carries its JSON error and is final."""
    if response.status_code in (502, 504):
        return True
    body = _json_or_text(response)
    return response.status_code == 503 and not (isinstance(body, dict) and isinstance(body.get("error"), dict))


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
