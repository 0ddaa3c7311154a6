"""Scripted TCP consoles for tests. A script is a list of steps: bytes to send, a float to pause
(seconds), an Event to wait for (ScriptedConsoleServer), or DROP to close the connection
(ScriptedBoard then waits for the reconnect)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence

import serial
from serial.rfc2217 import PortManager

Step = bytes | float | threading.Event | None
DROP: Step = None


class ScriptedConsoleServer:
    """Connection ``i`` plays ``sessions[i]``, then closes if ``sessions`` has more, else stays
    open until stop(). With ``hold_last=False`` the server goes away after its last session: it
    stops listening before it closes that connection, so a client's reconnect finds nobody (a
    listener left open would complete the handshake from its backlog and make the reconnect
    succeed or fail depending on who runs first)."""

    def __init__(self, sessions: Sequence[Sequence[Step]], *, hold_last: bool = True) -> None:
        self.sessions = [list(s) for s in sessions]
        self.hold_last = hold_last
        self.received = bytearray()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ended = [threading.Event() for _ in self.sessions]

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> ScriptedConsoleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> ScriptedConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ended(self, index: int) -> threading.Event:
        """Set once connection ``index`` is closed (the drop after its session)."""
        return self._ended[index]

    def _serve(self) -> None:
        while not self._stop.is_set() and self.connections < len(self.sessions):
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            index = self.connections
            self.connections += 1
            link = self._link(conn)
            try:
                self._play(link, self.sessions[index])
                if index == len(self.sessions) - 1:
                    if self.hold_last:
                        link.hold(self._stop)
                    else:
                        self._sock.close()
            finally:
                link.close()
                self._ended[index].set()

    def _link(self, conn: socket.socket) -> _RawLink:
        return _RawLink(conn, self.received)

    def _play(self, link: _RawLink, steps: list[Step]) -> None:
        for step in steps:
            if self._stop.is_set():
                return
            if isinstance(step, float):
                time.sleep(step)
            elif isinstance(step, threading.Event):
                step.wait(10)
            elif step is not None:
                link.send(step)


class _RawLink:
    """One client connection carrying the console's bytes as they are."""

    def __init__(self, conn: socket.socket, received: bytearray) -> None:
        self.conn = conn
        self.received = received

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def hold(self, stop: threading.Event) -> None:
        """Keep the connection, recording what the client writes, until ``stop``."""
        self.conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = self.conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return
            self.received.extend(data)

    def close(self) -> None:
        self.conn.close()


class _Rfc2217Link(_RawLink):
    """A connection speaking RFC 2217 through pyserial's own server side (PortManager), as
    ser2net does in a lab: telnet negotiation and COM-port control are answered by a reader
    thread from the first byte on, console bytes go out IAC-escaped."""

    def __init__(self, conn: socket.socket, received: bytearray) -> None:
        super().__init__(conn, received)
        self._lock = threading.Lock()
        self._port = serial.serial_for_url("loop://")  # what the manager "configures"
        self._manager = PortManager(self._port, self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def write(self, data: bytes) -> None:
        """PortManager's connection interface; called from both threads."""
        with self._lock:
            self.conn.sendall(data)

    def send(self, data: bytes) -> None:
        self.write(b"".join(self._manager.escape(data)))

    def _read(self) -> None:
        while True:
            try:
                data = self.conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.received.extend(b"".join(self._manager.filter(data)))

    def hold(self, stop: threading.Event) -> None:
        while not stop.is_set() and self._reader.is_alive():
            stop.wait(0.05)

    def close(self) -> None:
        # shutdown() wakes the reader's recv; close() alone would not.
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self._reader.join()
        self._port.close()


class ScriptedRfc2217Server(ScriptedConsoleServer):
    """ScriptedConsoleServer reached as ``rfc2217://``."""

    @property
    def url(self) -> str:
        return f"rfc2217://127.0.0.1:{self._sock.getsockname()[1]}"

    def _link(self, conn: socket.socket) -> _RawLink:
        return _Rfc2217Link(conn, self.received)


class ScriptedBoard:
    """A board whose console is a TCP server and whose power back-end is this object: every
    reset() plays the next boot script on the connected console (the last one repeats)."""

    def __init__(self, boots: Sequence[Sequence[Step]]) -> None:
        self.boots = [list(b) for b in boots]
        self.resets = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._conn: socket.socket | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._player: threading.Thread | None = None
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conn = conn
            self._connected.set()

    def _play(self, steps: list[Step]) -> None:
        for step in steps:
            if self._stop.is_set():
                return
            if isinstance(step, float):
                self._stop.wait(step)
            elif step is DROP:
                assert self._conn is not None
                self._connected.clear()
                self._conn.close()
                if not self._connected.wait(5):
                    return
            else:
                assert self._conn is not None
                self._conn.sendall(step)

    # PowerBackend
    def reset(self) -> None:
        assert self._connected.wait(5), "the console never connected"
        if self._player is not None:
            self._player.join()
        steps = self.boots[min(self.resets, len(self.boots) - 1)]
        self.resets += 1
        self._player = threading.Thread(target=self._play, args=(steps,), daemon=True)
        self._player.start()

    def power_on(self) -> None:
        self.reset()

    def power_off(self) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        if self._player is not None:
            self._player.join()
        self._acceptor.join()
        if self._conn is not None:
            self._conn.close()
        self._sock.close()
