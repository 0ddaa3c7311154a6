"""Scripted TCP consoles for tests. A script is a list of steps: bytes to send, a float to pause
(seconds), or DROP to close the connection (ScriptedBoard then waits for the reconnect)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

Step = bytes | float | None
DROP: Step = None


class ScriptedConsoleServer:
    """Connection ``i`` plays ``sessions[i]``, then closes if ``sessions`` has more, else stays
    open until stop()."""

    def __init__(self, sessions: Sequence[Sequence[Step]], *, hold_last: bool = True) -> None:
        self.sessions = [list(s) for s in sessions]
        self.hold_last = hold_last
        self.received = bytearray()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

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

    def _serve(self) -> None:
        while not self._stop.is_set() and self.connections < len(self.sessions):
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            index = self.connections
            self.connections += 1
            with conn:
                self._play(conn, self.sessions[index])
                last = index == len(self.sessions) - 1
                if last and self.hold_last:
                    self._hold(conn)

    def _play(self, conn: socket.socket, steps: list[Step]) -> None:
        for step in steps:
            if self._stop.is_set():
                return
            if isinstance(step, float):
                time.sleep(step)
            elif step is not None:
                conn.sendall(step)

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return
            self.received.extend(data)


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
