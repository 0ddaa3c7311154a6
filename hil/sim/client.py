"""``SimControl``: the client side of a virtual board's control channel (one JSON request line,
one JSON reply line). Each call opens its own connection, so a client survives board restarts
and needs no locking."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from hil.errors import InfraError


class SimControl:
    def __init__(self, host: str, port: int, board: str | None = None, timeout: float = 10.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self._who = f"virtual board {board}" if board else f"virtual board at {host}:{port}"

    def request(self, **request: Any) -> dict[str, Any]:
        """Send one request; returns the reply, raising InfraError when the board refuses it."""
        try:
            with socket.create_connection((self.host, self.port), self.timeout) as sock:
                sock.sendall(json.dumps(request).encode() + b"\n")
                with sock.makefile("rb") as stream:
                    line = stream.readline()
        except OSError as exc:
            raise InfraError(f"{self._who}: control channel: {exc}") from None
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise InfraError(f"{self._who}: control channel: bad reply {line[:100]!r}") from None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise InfraError(f"{self._who}: {request.get('cmd')} failed: {error}")
        return reply

    def deploy(self, bundle: Path) -> None:
        self.request(cmd="deploy", bundle=str(Path(bundle).resolve()))

    def reset(self) -> None:
        self.request(cmd="reset")

    def power(self, on: bool) -> None:
        self.request(cmd="power", on=on)

    def set_faults(self, faults: dict[str, Any]) -> None:
        self.request(cmd="faults", faults=faults)

    def sent_log(self, console: str = "ns") -> Path:
        """The board's own copy of every byte it sent on ``console``."""
        paths = self.request(cmd="sent")["paths"]
        if console not in paths:
            raise InfraError(f"{self._who}: no console {console!r} (has {', '.join(paths)})")
        return Path(paths[console])

    def quit(self) -> None:
        self.request(cmd="quit")
