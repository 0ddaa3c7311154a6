"""A console port that stays put while the process behind it comes and goes.

An FVP listens on a new port every launch (it says which in its "Listening for serial
connection" announcement), while a console is opened once per case, before the power-on that
launches the model. :class:`ConsoleRelay` listens on one local port for the whole session, like
a serial line to a real board, and joins whoever connects there with the model's current port
(``target``). Bytes are passed on as they come, both ways, never buffered beyond one read: with
no client connected, the upstream side is not even connected, so the model keeps its output."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading

log = logging.getLogger(__name__)

_CHUNK = 65536
_POLL_S = 0.5
_CONNECT_TIMEOUT_S = 2.0


class ConsoleRelay:
    """``open()`` binds 127.0.0.1:<free port> (``url``); ``target(port)`` points it at the
    process's console (None: the process is gone); ``close()`` stops it. One client at a time:
    a new connection replaces the previous one, as a console reconnecting after a drop does."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name, self.host = name, host
        self.port = 0
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._upstream: socket.socket | None = None
        self._target: int | None = None
        self._changed = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def open(self) -> ConsoleRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(1)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.name}", daemon=True)
        self._thread.start()
        return self

    def target(self, port: int | None) -> None:
        """Join clients with the process console at ``port`` from now on (None: nothing)."""
        with self._lock:
            self._target, self._changed = port, True
        self._wake()

    def close(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for sock in (self._client, self._upstream, self._listener):
            if sock is not None:
                sock.close()
        self._client = self._upstream = self._listener = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            self._follow_target()
            ready = [self._listener, self._wake_r]
            ready += [s for s in (self._client, self._upstream) if s is not None]
            readable, _, _ = select.select(ready, [], [], _POLL_S)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            if self._listener in readable:
                client, _ = self._listener.accept()
                self._drop("_client")
                self._client = client
            if self._upstream is not None and self._upstream in readable:
                self._pass(self._upstream, self._client, "_upstream")
            if self._client is not None and self._client in readable:
                self._pass(self._client, self._upstream, "_client")

    def _follow_target(self) -> None:
        """Connect upstream when there is a client and a target; drop it when the target moved."""
        with self._lock:
            target, changed, self._changed = self._target, self._changed, False
        if changed:
            self._drop("_upstream")
        if self._upstream is None and self._client is not None and target is not None:
            try:
                self._upstream = socket.create_connection((self.host, target), _CONNECT_TIMEOUT_S)
            except OSError as exc:
                log.info("relay %s: process console %d: %s", self.name, target, exc)
                with self._lock:  # gone or not up yet: the process side says when it is back
                    if self._target == target:
                        self._target = None

    def _pass(self, source: socket.socket, sink: socket.socket | None, side: str) -> None:
        try:
            data = source.recv(_CHUNK)
        except OSError:
            data = b""
        if not data:
            self._drop(side)
            if side == "_upstream":  # the process closed it: gone until targeted again
                with self._lock:
                    if not self._changed:  # (unless it was targeted again meanwhile)
                        self._target = None
            return
        if sink is not None:
            try:
                sink.sendall(data)
            except OSError:
                self._drop("_client" if sink is self._client else "_upstream")

    def _drop(self, side: str) -> None:
        sock = getattr(self, side)
        if sock is not None:
            sock.close()
            setattr(self, side, None)
