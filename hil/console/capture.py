"""One console's capture: a reader thread records every byte (``<name>.raw``) and every line
with its host time (``<name>.log``), and re-opens a dropped connection (tenacity) without losing a
byte already read; what it could not record is a gap (``Console.gaps``)."""

from __future__ import annotations

import bisect
import codecs
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TextIO

import serial
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from hil.console.model import (
    DEFAULT_RECONNECT,
    LAST_LINES,
    PANIC_PATTERNS,
    ConsoleChunk,
    ConsoleGap,
    ConsoleLost,
    ConsoleRecord,
    ReconnectPolicy,
    record_text,
)
from hil.console.ports import close_port, open_port, wait_readable

log = logging.getLogger(__name__)

# How long the reader idles between looks: short enough that close() reacts quickly.
_IDLE_S = 0.02
_DRAIN_S = 0.5
_READ_CHUNK = 4096


def _now() -> datetime:
    return datetime.now(UTC)


class Console:
    """One console. Use as a context manager or call ``open()`` / ``close()``."""

    def __init__(
        self,
        name: str,
        url: str,
        log_dir: Path,
        *,
        reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
        panic_patterns: Iterable[str] = PANIC_PATTERNS,
        condition: threading.Condition | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.raw_path = Path(log_dir) / f"{name}.raw"
        self.log_path = Path(log_dir) / f"{name}.log"
        self.panic = _panic_regex(panic_patterns)
        self._reconnect = reconnect
        # Shared by a ConsoleGroup so one wait can watch every console of a board.
        self._cond = condition or threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake: tuple[int, int] | None = None
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._raw: BinaryIO | None = None
        self._log: TextIO | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chunks: list[str] = []  # decoded text per chunk
        self._text_len = 0
        self._chunk_ends: list[int] = []  # text offset after each chunk ...
        self._chunk_times: list[datetime] = []  # ... and when it arrived
        self._partial = ""
        self._partial_time: datetime | None = None
        self._records: list[ConsoleRecord] = []
        self._chunk_hooks: list[Callable[[ConsoleChunk], None]] = []
        self._record_hooks: list[Callable[[ConsoleRecord], None]] = []
        self._lost: ConsoleLost | None = None
        self._raw_len = 0
        self._gaps: list[ConsoleGap] = []
        self.reconnects = 0
        # Writing the capture failed (a full disk): it has a hole, so nothing judged from it
        # may stand. Sticky until the console object is gone.
        self.capture_error: ConsoleLost | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def open(self, connect_now: bool = True) -> Console:
        """Start capturing (again, after ``close``: the capture files are appended to).

        ``connect_now=False``: nothing needs to listen yet; the reader connects as soon as
        something does (within ``ReconnectPolicy.first_connect_s``), so a board that starts
        sending only once its consoles are connected loses no byte."""
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self._port = None
        if connect_now:
            try:
                self._port = open_port(self.url)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise ConsoleLost(f"console '{self.name}': cannot open {self.url}: {exc}") from exc
        self._stop.clear()
        with self._cond:
            self._lost = None
            if self._port is not None:
                self._gap_ends()
        self._raw = self.raw_path.open("ab")
        self._log = self.log_path.open("a", encoding="utf-8")
        # Written on stop so the reader leaves its idle wait at once instead of at its timeout.
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"console-{self.name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the reader to stop without waiting for it (``close`` waits)."""
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"\0")

    def close(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        with self._cond:
            if self._lost is None:
                self._lost = ConsoleLost(f"console '{self.name}': closed", self._last_lines())
            if self._partial:
                self._emit_record(self._partial)
                self._partial = ""
            self._cond.notify_all()
        for f in (self._raw, self._log):
            if f is not None:
                try:
                    f.close()
                except OSError as exc:
                    self._capture_failed(exc)
        self._raw = self._log = None

    def __enter__(self) -> Console:
        return self.open()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- interaction -----------------------------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        payload = data.encode() if isinstance(data, str) else data
        with self._write_lock:
            if self._port is None:
                raise ConsoleLost(f"console '{self.name}': not connected")
            try:
                self._port.write(payload)
            except (serial.SerialException, OSError) as exc:
                raise ConsoleLost(f"console '{self.name}': write failed: {exc}") from exc

    def subscribe(
        self,
        on_chunk: Callable[[ConsoleChunk], None] | None = None,
        on_record: Callable[[ConsoleRecord], None] | None = None,
    ) -> None:
        """Feed every chunk (raw bytes + decoded text) and/or every line live, on the reader
        thread, in arrival order. Line hooks run with the console lock held: keep them quick."""
        with self._cond:
            if on_chunk:
                self._chunk_hooks.append(on_chunk)
            if on_record:
                self._record_hooks.append(on_record)

    @property
    def lost(self) -> ConsoleLost | None:
        """Why the console is gone (closed, or not re-opened after a drop); None while live."""
        with self._cond:
            return self._lost

    def mark(self) -> int:
        """A position in the decoded text; ``expect(..., since=mark)`` looks only after it."""
        with self._cond:
            return self._text_len

    def text(self, since: int = 0) -> str:
        with self._cond:
            base, text = self._window(since)
            return text[since - base :]

    def records(self) -> list[ConsoleRecord]:
        with self._cond:
            return list(self._records)

    def gaps(self, since: datetime | None = None) -> list[ConsoleGap]:
        """The times this console was disconnected while open (a drop it reconnected after, or
        one it never recovered from), oldest first; with ``since``, only those that may have
        cost bytes sent at or after that time."""
        with self._cond:
            return [g for g in self._gaps if since is None or g.overlaps(since)]

    def expect(
        self, pattern: str | re.Pattern[str], timeout: float, since: int | None = None
    ) -> re.Match[str]:
        from hil.console.wait import expect_any  # the wait module builds on this one

        marks = None if since is None else {self.name: since}
        return expect_any([self], pattern, timeout, marks).match

    # -- reader thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        if self._port is None and not self._connect_late():
            return
        while not self._stop.is_set():
            try:
                assert self._port is not None
                data = self._port.read(_READ_CHUNK)
                if not data:
                    self._idle(self._port)
            except (serial.SerialException, OSError) as exc:
                self._gap_begins(exc)
                if not self._reopen(exc):
                    return
                continue
            if data and not self._ingest(data):
                self._close_port()
                return
        self._drain()
        self._close_port()

    def _drain(self) -> None:
        """On stop, record what already arrived: bytes the board sent while the console was open
        belong to the capture even when a wait ended early (a panic on another console). Bounded,
        so a board that keeps talking cannot hold the close up."""
        deadline = time.monotonic() + _DRAIN_S
        with contextlib.suppress(serial.SerialException, OSError):
            while self._port is not None and time.monotonic() < deadline:
                data = self._port.read(_READ_CHUNK)
                if not data or not self._ingest(data):
                    return

    def _idle(self, port: serial.SerialBase) -> None:
        wait_readable(port, _IDLE_S, self._wake[0] if self._wake is not None else None)

    def _close_port(self) -> None:
        with self._write_lock:
            if self._port is not None:
                close_port(self._port)
                self._port = None

    def _connect_late(self) -> bool:
        policy = self._reconnect
        connected = self._connect(
            stop_after_delay(policy.first_connect_s),
            wait_fixed(policy.wait_initial_s),
            f"nothing listening on {self.url} within {policy.first_connect_s:g} s",
        )
        if connected:
            log.info("console '%s': connected to %s", self.name, self.url)
            with self._cond:
                self._gap_ends()
        return connected

    def _reopen(self, cause: Exception) -> bool:
        self._close_port()
        policy = self._reconnect
        reopened = self._connect(
            stop_after_attempt(policy.attempts),
            wait_exponential(multiplier=policy.wait_initial_s, max=policy.wait_max_s),
            f"connection lost ({cause}) and not re-opened after {policy.attempts} attempts",
        )
        if reopened:
            self.reconnects += 1
            log.info("console '%s': reconnected after: %s", self.name, cause)
            with self._cond:
                self._gap_ends()
        return reopened

    def _gap_begins(self, cause: Exception) -> None:
        """The connection is gone: whatever the board sends until it is back is lost. The line
        in progress ends here, so that no line of the capture splices text from both sides."""
        now = _now()
        with self._cond:
            # A character cut by the drop is not completed by bytes from after it.
            if tail := self._decoder.decode(b"", final=True):
                self._add_text(tail, now)
            self._decoder.reset()
            if self._partial:
                self._emit_record(self._partial)
                self._partial, self._partial_time = "", None
            gap = ConsoleGap(self.name, now, None, self._raw_len, self._text_len, str(cause))
            self._gaps.append(gap)
            self._write_log(f"{_stamp(now)} {self.name} ! disconnected: {record_text(str(cause))}")

    def _gap_ends(self) -> None:
        """(Condition held.) Connected again: close the open gap, if any."""
        if not self._gaps or self._gaps[-1].resumed is not None:
            return
        now = _now()
        gap = self._gaps[-1] = replace(self._gaps[-1], resumed=now)
        seconds = (now - gap.lost).total_seconds()
        self._write_log(
            f"{_stamp(now)} {self.name} ! reconnected after {seconds:.3f} s:"
            " what the board sent meanwhile is not in this capture"
        )

    def _connect(self, stop: stop_base, wait: wait_base, failure: str) -> bool:
        """Open the port, retrying per ``stop``/``wait``; on giving up, waiters get ConsoleLost
        saying ``failure``."""

        def closing(_: RetryCallState) -> bool:
            return self._stop.is_set()

        retrying = Retrying(
            stop=stop | closing,
            wait=wait,
            retry=retry_if_exception_type((serial.SerialException, OSError)),
            sleep=self._stop.wait,  # close() interrupts the backoff
            reraise=True,
        )
        try:
            port = retrying(open_port, self.url)
        except (serial.SerialException, OSError) as exc:
            with self._cond:
                message = f"console '{self.name}': {failure}: {exc}"
                self._lost = ConsoleLost(message, self._last_lines())
                self._cond.notify_all()
            return False
        with self._write_lock:
            self._port = port
        return True

    def _ingest(self, data: bytes) -> bool:
        """Record ``data``; False when the capture could not be written (then the console is
        lost: a wait must not go on judging what can no longer be kept)."""
        now = _now()
        assert self._raw is not None
        # Raw bytes hit the disk before anything else can fail.
        try:
            self._raw.write(data)
            self._raw.flush()
        except OSError as exc:
            self._capture_failed(exc)
            return False
        self._raw_len += len(data)
        text = self._decoder.decode(data)
        with self._cond:
            self._add_text(text, now)
            chunk_hooks = list(self._chunk_hooks)
            self._cond.notify_all()
        chunk = ConsoleChunk(now, self.name, data, text)
        for hook in chunk_hooks:
            _call_hook(hook, chunk)
        return True

    def _capture_failed(self, exc: OSError) -> None:
        lost = ConsoleLost(
            f"console '{self.name}': cannot write its capture in {self.raw_path.parent}: "
            f"{exc.strerror or exc}",
            self._last_lines(),
        )
        with self._cond:
            self.capture_error = self.capture_error or lost
            self._lost = self.capture_error
            self._cond.notify_all()

    def _add_text(self, text: str, now: datetime) -> None:
        self._chunks.append(text)
        self._text_len += len(text)
        self._chunk_ends.append(self._text_len)
        self._chunk_times.append(now)
        self._split_lines(text, now)

    def _split_lines(self, text: str, now: datetime) -> None:
        if self._partial_time is None and text:
            self._partial_time = now
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._emit_record(line)
            self._partial_time = now
        if not self._partial:
            self._partial_time = None

    def _emit_record(self, line: str) -> None:
        record = ConsoleRecord(self._partial_time or _now(), self.name, record_text(line))
        self._records.append(record)
        self._write_log(record.format())
        for hook in self._record_hooks:
            _call_hook(hook, record)

    def _write_log(self, line: str) -> None:
        if self._log is not None:
            try:
                self._log.write(line + "\n")
                self._log.flush()
            except OSError as exc:
                self._capture_failed(exc)

    # -- helpers for waits (caller holds the condition) ------------------------------------------

    def _window(self, offset: int) -> tuple[int, str]:
        """``(base, text)``: the decoded text from just before ``offset`` on. It starts one chunk
        early so that ``^`` and ``\\b`` at ``offset`` see the character before it."""
        i = max(bisect.bisect_right(self._chunk_ends, offset) - 1, 0)
        base = self._chunk_ends[i - 1] if i else 0
        return base, "".join(self._chunks[i:])

    def _time_at(self, offset: int) -> datetime:
        i = bisect.bisect_left(self._chunk_ends, offset)
        return self._chunk_times[min(i, len(self._chunk_times) - 1)]

    def _last_lines(self, n: int = LAST_LINES) -> list[str]:
        lines = [r.text for r in self._records[-n:]]
        if self._partial:
            lines.append(record_text(self._partial))
        return lines[-n:]


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="microseconds")


def _panic_regex(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for ``patterns`` (MULTILINE: ``^`` is a line start); None for no patterns, which
    watch nothing (an empty alternation would match everywhere)."""
    patterns = tuple(patterns)
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE)


def _call_hook(hook: Callable[[object], None], arg: object) -> None:
    # A broken subscriber must not stop the recording.
    try:
        hook(arg)
    except Exception:
        log.exception("console hook %r failed", hook)
