"""Opening and closing the pyserial ports a capture reads: any ``serial_for_url`` URL, with the
few changes a capture that must keep every byte needs."""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading

import serial
from serial import rfc2217
from serial.urlhandler import protocol_socket

# How long close() waits for pyserial's RFC 2217 reader thread (woken by the shutdown).
_JOIN_S = 2.0


class Rfc2217Port(rfc2217.Serial):
    """pyserial's RFC 2217 client (what ser2net and labgrid exporters serve), changed where it
    loses bytes or time:

    - ``read`` returns what pyserial's reader thread queued before the connection dropped:
      pyserial's own ``read`` raises as soon as that thread has ended and drops those bytes, so
      the tail of a slow board's last line before a drop never reached the capture;
    - ``read`` returns everything queued at once (pyserial's returns one byte per call when
      ``timeout=0``, its queue holding single bytes);
    - ``wait_readable`` lets the reader sleep until a byte arrives instead of polling;
    - ``close`` does not sleep 0.3 s "for quick reconnects".
    """

    _held: bytes | None = None
    _ended = False

    def open(self) -> None:
        self._held, self._ended = None, False
        super().open()

    def wait_readable(self, timeout: float) -> None:
        """Return once ``read`` has something to return (data, or the end), or after
        ``timeout`` s."""
        if self._held is not None or self._ended:
            return
        with contextlib.suppress(queue.Empty):
            item = self._read_buffer.get(True, timeout)
            if item is None:
                self._ended = True
            else:
                self._held = item

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise serial.PortNotOpenError()
        # Looked at before draining: once the thread is gone, everything it read is queued.
        thread = self._thread
        gone = thread is None or not thread.is_alive()
        data = bytearray()
        if self._held is not None:
            data += self._held
            self._held = None
        while len(data) < size and not self._ended:
            try:
                item = self._read_buffer.get_nowait()
            except queue.Empty:
                break
            if item is None:  # pyserial's mark: the connection ended after what came before
                self._ended = True
            else:
                data += item
        if not data and (self._ended or gone):
            raise serial.SerialException("connection lost")
        return bytes(data)

    def close(self) -> None:
        self.is_open = False
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)
        self._thread = None
        self._socket = None


def open_port(url: str) -> serial.SerialBase:
    """Open ``url`` for a capture: non-blocking reads, and nothing already received thrown away.

    Non-blocking on purpose: pyserial's blocking read() gathers several receives and throws away
    what it gathered when the connection drops mid-read; timeout=0 does one receive. open()
    would discard input that arrived while connecting (reset_input_buffer) - on a reconnect,
    bytes the board sent that must be recorded - and over RFC 2217 also ask the server to purge
    its buffers, costing a round trip that fails if the board drops meanwhile."""
    if url.startswith("rfc2217://"):
        port: serial.SerialBase = Rfc2217Port(None, timeout=0)
        port.port = url
    else:
        port = serial.serial_for_url(url, timeout=0, do_not_open=True)
    # Instance attributes shadow the methods for open() only.
    port.reset_input_buffer = _nothing  # type: ignore[method-assign]
    port.reset_output_buffer = _nothing  # type: ignore[method-assign]
    try:
        port.open()
    finally:
        del port.reset_input_buffer, port.reset_output_buffer
    return port


def _nothing() -> None:
    pass


def wait_readable(port: serial.SerialBase, timeout: float, wake: int | None) -> None:
    """Wait up to ``timeout`` s for input on ``port``, or until ``wake`` (a descriptor) is
    readable: on the descriptor where there is one (tty, socket), on pyserial's queue for
    RFC 2217, else by sleeping (``loop://``)."""
    if isinstance(port, Rfc2217Port):
        port.wait_readable(timeout)
        return
    try:
        fd = port.fileno()
    except (OSError, ValueError):
        # Nothing to wait on: poll, but often (``loop://`` is for tests and demos).
        select.select([] if wake is None else [wake], [], [], timeout / 4)
        return
    select.select([fd] if wake is None else [fd, wake], [], [], timeout)


def read_port(port: serial.SerialBase, size: int) -> bytes:
    """What has arrived on ``port``, up to ``size`` bytes; b"" when nothing has. Raises
    SerialException as pyserial's ``read`` does (``timeout=0``) when the connection ended.

    A socket:// port is received from directly: pyserial's ``read`` adds a select() call and
    copies every read twice (into a bytearray, then out of it), about a fifth of the CPU a
    fast console's capture spends."""
    sock = getattr(port, "_socket", None)
    if not isinstance(port, protocol_socket.Serial) or sock is None or not port.is_open:
        return port.read(size)
    try:
        data = sock.recv(size)  # non-blocking: pyserial's open() made it so
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError as exc:
        raise serial.SerialException(f"read failed: {exc}") from exc
    if not data:
        raise serial.SerialException("socket disconnected")
    return data


def close_port(port: serial.SerialBase) -> None:
    """Close ``port``. pyserial's socket:// close() sleeps 0.3 s "in case of quick reconnects";
    a capture is closed after every case, so for sockets shut the socket down here instead."""
    sock = getattr(port, "_socket", None)
    if not isinstance(port, protocol_socket.Serial) or sock is None:
        port.close()
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    port._socket = None  # type: ignore[attr-defined]
    port.is_open = False
