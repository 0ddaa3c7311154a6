"""hil.boards.relay: the console port an FVP board keeps for the session while each launch of the
model listens on a port of its own."""

from __future__ import annotations

import socket
import threading
import time

from hil.boards.relay import ConsoleRelay


class Terminal:
    """A model's terminal: accepts one client, sends ``greeting``, records what it is sent."""

    def __init__(self, greeting: bytes) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.accepted = threading.Event()
        self.conn: socket.socket | None = None
        threading.Thread(target=self._serve, args=(greeting,), daemon=True).start()

    def _serve(self, greeting: bytes) -> None:
        conn, _ = self.server.accept()
        self.conn = conn
        self.accepted.set()
        conn.sendall(greeting)
        while data := conn.recv(100):
            self.received += data

    def close(self) -> None:  # the model exits
        assert self.conn is not None
        self.conn.shutdown(socket.SHUT_RDWR)
        self.server.close()

    def wait_for(self, data: bytes) -> bytes:
        deadline = time.monotonic() + 5
        while self.received != data and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received


def read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_one_client_connection_outlives_model_launches_both_ways() -> None:
    relay = ConsoleRelay("fvp0:normal").open()
    try:
        first = Terminal(b"boot one\n")
        relay.target(first.port)
        assert not first.accepted.wait(0.3)  # no client yet: the model keeps its output
        client = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        assert read(client, 9) == b"boot one\n"
        client.sendall(b"key")  # typed on the console, reaches the model
        assert first.wait_for(b"key") == b"key"
        first.close()
        second = Terminal(b"boot two\n")
        relay.target(second.port)  # the next launch: same client, no reconnect
        assert read(client, 9) == b"boot two\n"
        client.sendall(b"\r")
        assert second.wait_for(b"\r") == b"\r"
        client.close()
    finally:
        relay.close()
