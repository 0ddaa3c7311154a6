"""The virtual board's TCP endpoints: one raw-byte server per console (what pyserial reaches as
``socket://HOST:PORT``) and the control server (newline-delimited JSON requests, one JSON reply
line each).

A console accepts a client at any time; a new client replaces the old one, whose socket is
closed. Like a real UART, bytes the board prints while no client is connected are lost to the
wire, but every byte is kept in the console's sent-log (flushed per write), so tests can compare
what the controller captured with what the board sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import HilError

if TYPE_CHECKING:
    from hil.sim.board import VirtualBoard

READ_CHUNK = 4096
# Longest control request accepted; a deploy path is far shorter.
MAX_REQUEST = 1 << 16
# pyserial's socket:// open() discards whatever arrives before it returns (reset_input_buffer),
# so a boot waiting for a client starts only this long after the client connected.
CONNECT_SETTLE = 0.1


class ConsolePort:
    def __init__(self, name: str, sent_log: Path) -> None:
        self.name = name
        self.sent_log = sent_log
        self._log = sent_log.open("wb")
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._connected_at = 0.0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(self._client, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.drop_client()
        self._writer = writer
        self._connected_at = asyncio.get_running_loop().time()
        self._connected.set()
        try:
            # The modelled firmware reads no input; draining it notices the client leaving.
            while await reader.read(READ_CHUNK):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the board is shutting down
        finally:
            if self._writer is writer:
                self.drop_client()
            writer.close()

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def wait_client(self) -> None:
        """Return once a client is connected and settled (see CONNECT_SETTLE)."""
        await self._connected.wait()
        settled = self._connected_at + CONNECT_SETTLE - asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.0, settled))

    def drop_client(self) -> None:
        """Close the current client's socket (it sees EOF), as a terminal server dropping it."""
        writer, self._writer = self._writer, None
        self._connected.clear()
        if writer is not None:
            writer.close()

    async def write(self, data: bytes, ms_per_byte: float = 0.0) -> None:
        if ms_per_byte <= 0:
            await self._send(data)
            return
        for index in range(len(data)):
            await self._send(data[index : index + 1])
            await asyncio.sleep(ms_per_byte / 1000)

    async def _send(self, data: bytes) -> None:
        self._log.write(data)
        self._log.flush()
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            if self._writer is writer:
                self.drop_client()

    async def close(self) -> None:
        self.drop_client()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._log.close()


class ControlServer:
    """Serves the control channel for one board; ``stopped`` is set by a ``quit`` request."""

    def __init__(self, board: VirtualBoard) -> None:
        self.board = board
        self.stopped = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_REQUEST)
        return int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    line = await reader.readline()
                except ValueError:
                    await self._reply(writer, _error(f"request longer than {MAX_REQUEST} bytes"))
                    break
                if not line:
                    break
                await self._reply(writer, self.handle(line))
        except ConnectionError:
            pass
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()

    def handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(f"request is not JSON: {exc}")
        if not isinstance(request, dict):
            return _error("request must be a JSON object")
        try:
            return self._dispatch(request)
        except HilError as exc:
            return _error(str(exc))

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        board = self.board
        cmd = request.get("cmd")
        if cmd == "deploy" and isinstance(request.get("bundle"), str):
            board.deploy(Path(request["bundle"]))
        elif cmd == "reset":
            board.reset()
        elif cmd == "power" and isinstance(request.get("on"), bool):
            board.power(request["on"])
        elif cmd == "faults" and "faults" in request:
            board.set_faults(request["faults"])
        elif cmd == "sent":
            paths = {name: str(port.sent_log) for name, port in board.consoles.items()}
            return {"ok": True, "path": paths["ns"], "paths": paths}
        elif cmd == "quit":
            self.stopped.set()
        else:
            return _error(f"bad request {json.dumps(request)[:200]}")
        return {"ok": True}

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


def _error(text: str) -> dict[str, Any]:
    return {"ok": False, "error": text}
