"""A real TCP proxy in front of the live server, to make it unreachable, slow or faulty on demand."""

from __future__ import annotations

import contextlib
import math
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

HTTP_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"}


@dataclass
class _Fault:
    how: str  # "reset", "restart" or "delay"
    seconds: float
    match: bytes  # only for a request whose first line holds this


class TCPProxy:
    """Forwards 127.0.0.1:<port> to ``target``.

    ``stop()`` closes the port and cuts open connections (new ones are then refused); ``start()``
    opens it again. ``delay_responses`` holds back the answers of the next N connections for
    ``delay`` seconds, after the server has handled the request. ``fail_responses`` and
    ``fail_requests`` break the next answers or requests on any connection. ``idle_reset_after``
    plays a server closing idle kept-alive connections as a request crosses the close, the worst
    case of that race made certain: a request on a connection idle that long, or whose server side
    has closed, is reset (the server's close is not passed on to the client)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.delay = 0.0
        self.delayed_connections = 0
        self.connections = 0  # accepted so far
        self.idle_reset_after: float | None = None
        self.idle_resets = 0  # connections reset for being reused after idle_reset_after
        self.faults_done = 0  # answers and requests broken by fail_responses / fail_requests
        self._response_faults: list[_Fault] = []
        self._request_faults: list[_Fault] = []
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone leaves the port listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def delay_responses(self, connections: int, delay: float) -> None:
        with self._lock:
            self.delayed_connections, self.delay = connections, delay

    def fail_responses(self, count: int, how: str = "reset", *, seconds: float = 0.0, match: str = "") -> None:
        """Break the next ``count`` answers to requests whose first line holds ``match`` (such as
        "POST /api/v1/runs/"), after the server has handled them. ``reset``: the answer is dropped
        and the client's connection reset (RST). ``restart``: dropped, and the port closed (every
        connection cut, new ones refused) for ``seconds``, as a server restart does. ``delay``: held
        back ``seconds``, so a client with a shorter timeout gives up on it."""
        if how not in ("reset", "restart", "delay"):
            raise ValueError(how)
        with self._lock:
            self._response_faults += [_Fault(how, seconds, match.encode())] * count

    def fail_requests(self, count: int, *, match: str = "") -> None:
        """Reset the client's connection on the next ``count`` requests whose first line holds
        ``match``, before the server sees them."""
        with self._lock:
            self._request_faults += [_Fault("reset", 0.0, match.encode())] * count

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                delay = self.delay if self.delayed_connections > 0 else 0.0
                self.delayed_connections = max(0, self.delayed_connections - 1)
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open.update((client, upstream))
            threading.Thread(target=self._forward, args=(client, upstream, delay), daemon=True).start()

    def _forward(self, client: socket.socket, upstream: socket.socket, delay: float) -> None:
        """Carry one connection both ways, in one thread, so a fault can end it at once."""
        idle_since = time.monotonic()
        request_line = b""
        answering = False  # the answer to request_line has begun: its later pieces are not faulted
        server_closed = False
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ)
                selector.register(upstream, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select():
                        source = key.fileobj
                        data = source.recv(65536)  # type: ignore[union-attr]
                        if not data and source is upstream and self.idle_reset_after is not None:
                            selector.unregister(upstream)  # the client learns of it with its next request
                            server_closed = True
                            continue
                        if not data:
                            return
                        if source is client:
                            if data.split(b" ", 1)[0] in HTTP_METHODS:  # a request starts here
                                request_line, answering = data.split(b"\r\n", 1)[0], False
                                idle = math.inf if server_closed else time.monotonic() - idle_since
                                if self._breaks_request(request_line, idle):
                                    _reset(client)
                                    return
                            upstream.sendall(data)
                            idle_since = time.monotonic()
                            continue
                        fault = None if answering else self._take(self._response_faults, request_line)
                        answering = True
                        if fault is not None and fault.how != "delay":
                            _reset(client)
                            if fault.how == "restart":
                                self.stop()
                                reopen = threading.Timer(fault.seconds, self.start)
                                reopen.daemon = True
                                reopen.start()
                            return
                        if fault is not None:
                            time.sleep(fault.seconds)
                        if delay:
                            time.sleep(delay)
                            delay = 0.0
                        client.sendall(data)
                        idle_since = time.monotonic()
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.difference_update((client, upstream))

    def _breaks_request(self, request_line: bytes, idle: float) -> bool:
        if self.idle_reset_after is not None and idle >= self.idle_reset_after:
            with self._lock:
                self.idle_resets += 1
            return True
        return self._take(self._request_faults, request_line) is not None

    def _take(self, faults: list[_Fault], request_line: bytes) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(faults):
                if fault.match in request_line:
                    self.faults_done += 1
                    return faults.pop(index)
            return None


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a server closing a connection with unread data does: the client reads
    "Connection reset by peer"."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
