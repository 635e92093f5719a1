"""An overall deadline on every read and write of a connection: what httpx's timeouts do not give.

httpx's read timeout bounds each read, so a server that sends one byte every few seconds (of its body or
of its headers, which httpx reads to the end before `send` returns) holds a request for as long as it
likes. httpx has no total timeout (encode/httpx#1450) and suggests it belongs in httpcore, at the network
layer; so this is a network backend whose streams cut every read's and write's timeout to the time left
before the deadline of the request in flight on this thread, and fail with a timeout once none is left.
The client sets that deadline around each attempt with `deadline()`. A cut connection is closed by
httpcore like any timed-out one, never reused.
"""
from __future__ import annotations

import contextlib
import ssl
import typing
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

import httpcore
import httpx

# Seconds left before the current attempt's deadline, as a function of now; None outside an attempt.
_seconds_left: ContextVar[Callable[[], float] | None] = ContextVar("jobsync_http_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds_left: Callable[[], float]) -> Iterator[None]:
    """Every read and write on this thread, inside the block, ends by the time `seconds_left()` is 0."""
    token = _seconds_left.set(seconds_left)
    try:
        yield
    finally:
        _seconds_left.reset(token)


def _cut(timeout: float | None, error: type[Exception]) -> float | None:
    seconds_left = _seconds_left.get()
    if seconds_left is None:
        return timeout
    left = seconds_left()
    if left <= 0:
        raise error("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _cut(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _cut(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, cut, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        cut = _cut(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, cut, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its exception mapping, keep-alive pool, TLS) over the deadline backend.

    httpx.HTTPTransport takes no network backend, so its pool is rebuilt with one: the same settings
    it would have used, no proxy (the sources talk to the APIs directly).
    """

    def __init__(self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = httpx.Limits()):
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)  # built once, for both pools
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )
