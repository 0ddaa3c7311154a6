"""Board consoles over pyserial ``serial_for_url`` (tty path, ``socket://``, ``rfc2217://``,
``loop://``): a reader thread records every byte (``<name>.raw``) and every line with its host time
(``<name>.log``), ``expect`` waits for a regex, panics end any wait at once, and a dropped
connection is re-opened (tenacity) without losing a byte already read."""

from __future__ import annotations

import bisect
import codecs
import contextlib
import logging
import os
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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

from hil.errors import ExitCode, HilError, InfraError
from hil.terminal import escape
from hil.xen.log import format_capture_line

log = logging.getLogger(__name__)

PANIC_PATTERNS: tuple[str, ...] = (r"Panic on CPU", r"Xen BUG at", r"Kernel panic", r"SError")
LAST_LINES = 20
# How long the reader idles between looks: short enough that close() reacts quickly.
_IDLE_S = 0.02
_DRAIN_S = 0.5
_READ_CHUNK = 4096
# A wait re-searches only this much old text on each wake-up, so long captures stay linear; a
# match longer than this that arrives across several reads could be missed (markers are lines).
_RESCAN = 64 * 1024


class ConsoleError(HilError):
    """A wait on a console ended without its match; carries the last lines seen."""

    def __init__(self, message: str, last_lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.last_lines = tuple(last_lines)


class ConsoleTimeout(ConsoleError, InfraError):
    """The pattern did not arrive in time: the board stalled (the lab is broken)."""


class ConsoleLost(ConsoleError, InfraError):
    """The console connection is gone and could not be re-opened (or was closed)."""


class ConsolePanic(ConsoleError):
    """The firmware panicked: the firmware is wrong, not the lab."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try re-opening a lost console: ``attempts`` opens, exponential backoff."""

    attempts: int = 5
    wait_initial_s: float = 0.05
    wait_max_s: float = 2.0
    # A console opened before its board exists (``open(connect_now=False)``, an emulator that
    # power-on launches) keeps trying every ``wait_initial_s`` for this long before it is lost.
    first_connect_s: float = 30.0


@dataclass(frozen=True)
class ConsoleGap:
    """A stretch of time the console was not connected: whatever the board sent from ``lost`` to
    ``resumed`` is missing from the capture, between the first ``raw_offset`` bytes of
    ``<name>.raw`` and the rest (``text_offset`` is the same place as a ``mark()``). A gap whose
    ``resumed`` is None never ended (the console was not re-opened, or not yet)."""

    console: str
    lost: datetime
    resumed: datetime | None
    raw_offset: int
    text_offset: int
    cause: str

    def overlaps(self, since: datetime) -> bool:
        """Whether bytes sent at or after ``since`` may be missing because of this gap."""
        return self.resumed is None or self.resumed >= since


@dataclass(frozen=True)
class ConsoleChunk:
    time: datetime
    console: str
    data: bytes
    text: str


@dataclass(frozen=True)
class ConsoleRecord:
    """One console line: host UTC time its first byte arrived, console name, sanitised text."""

    time: datetime
    console: str
    text: str

    def format(self) -> str:
        return format_capture_line(self.time, self.console, self.text)


@dataclass(frozen=True)
class ConsoleMatch:
    console: str
    match: re.Match[str]  # positions are relative to the searched window; use ``end``
    end: int  # offset in the console's text just after the match: the next wait's mark
    time: datetime  # host time the byte completing the match arrived


def record_text(line: str) -> str:
    """What a record keeps of one console line: CRs (from CRLF endings) dropped, tabs kept as
    layout, every other non-printable character escaped."""
    return escape(line.replace("\r", ""), keep="\t")


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
        reconnect: ReconnectPolicy = ReconnectPolicy(),
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
                self._port = self._open_port()
            except (serial.SerialException, OSError, ValueError) as exc:
                raise ConsoleLost(f"console '{self.name}': cannot open {self.url}: {exc}") from exc
        self._stop.clear()
        with self._cond:
            self._lost = None
            if self._port is not None:
                self._gap_ends()
        self._raw = self.raw_path.open("ab")
        self._raw_len = self._raw.tell()  # byte offsets count from the start of the file
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

    def raw_mark(self) -> int:
        """How many bytes ``<name>.raw`` holds: an offset in the file, like ConsoleGap.raw_offset
        (all of them are on disk; a boot's output is the file from its mark on)."""
        return self._raw_len

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
        marks = None if since is None else {self.name: since}
        return expect_any([self], pattern, timeout, marks).match

    # -- reader thread ---------------------------------------------------------------------------

    def _open_port(self) -> serial.SerialBase:
        # Non-blocking on purpose: pyserial's blocking read() gathers several receives and throws
        # away what it gathered when the connection drops mid-read; timeout=0 does one receive.
        port = serial.serial_for_url(self.url, timeout=0, do_not_open=True)
        # open() discards input that arrived while connecting (reset_input_buffer): on a
        # reconnect those are bytes the board sent that must be recorded.
        port.reset_input_buffer = lambda: None  # type: ignore[method-assign]
        port.open()
        return port

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
        """Wait a little for input: on the descriptor where there is one (tty, socket), else
        poll (``loop://``, ``rfc2217://`` buffer in pyserial)."""
        try:
            fd = port.fileno()
        except (OSError, ValueError):
            self._stop.wait(_IDLE_S / 4)
            return
        wake = [self._wake[0]] if self._wake is not None else []
        select.select([fd, *wake], [], [], _IDLE_S)

    def _close_port(self) -> None:
        with self._write_lock:
            if self._port is not None:
                _close_without_linger(self._port)
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
            port = retrying(self._open_port)
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


def _close_without_linger(port: serial.SerialBase) -> None:
    """Close ``port``. pyserial's socket:// close() sleeps 0.3 s "in case of quick reconnects";
    a capture is closed after every case, so for sockets shut the socket down here instead."""
    sock = getattr(port, "_socket", None)
    if sock is None:
        port.close()
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    port._socket = None  # type: ignore[attr-defined]
    port.is_open = False


def _call_hook(hook: Callable[[object], None], arg: object) -> None:
    # A broken subscriber must not stop the recording.
    try:
        hook(arg)
    except Exception:
        log.exception("console hook %r failed", hook)


def expect_any(
    consoles: Sequence[Console],
    pattern: str | re.Pattern[str],
    timeout: float,
    marks: Mapping[str, int] | None = None,
    watch: Sequence[Console] | None = None,
) -> ConsoleMatch:
    """Wait until ``pattern`` appears on one of ``consoles`` after its mark (default: from the
    start). A panic on any of ``watch`` (default: ``consoles``) before the match ends the wait
    with ConsolePanic; a lost console with ConsoleLost; no match in ``timeout`` s ConsoleTimeout."""
    regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
    watched = list(watch if watch is not None else consoles)
    everyone = list(dict.fromkeys([*consoles, *watched]))
    cond = consoles[0]._cond
    starts = {c.name: (marks or {}).get(c.name, 0) for c in everyone}
    resume = dict(starts)
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            hit = _first_hit(consoles, regex, watched, resume)
            if hit is not None:
                return hit
            for c in everyone:
                resume[c.name] = max(starts[c.name], c._text_len - _RESCAN)
            lost = next((c._lost for c in everyone if c._lost is not None), None)
            if lost is not None:
                raise ConsoleLost(str(lost), _last_lines(everyone))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                where = ", ".join(c.name for c in consoles)
                where = f"consoles {where}" if len(consoles) > 1 else f"console '{where}'"
                last = _last_lines(everyone)
                raise ConsoleTimeout(
                    f"{where}: no {pattern_text(regex)} within {timeout:g} s"
                    + _last_said(everyone, last),
                    last,
                )
            cond.wait(remaining)


def _first_hit(
    consoles: Sequence[Console],
    regex: re.Pattern[str],
    watched: Sequence[Console],
    starts: Mapping[str, int],
) -> ConsoleMatch | None:
    """The earliest match, unless a panic arrived before it (then raise)."""
    found: ConsoleMatch | None = None
    found_end = 0
    for console in consoles:
        base, text = console._window(starts[console.name])
        m = regex.search(text, starts[console.name] - base)
        if m is None:
            continue
        when = console._time_at(base + m.end())
        if found is None or when < found.time:
            found, found_end = ConsoleMatch(console.name, m, base + m.end(), when), m.end()
    for console in watched:
        if console.panic is None:
            continue
        base, text = console._window(starts[console.name])
        p = console.panic.search(text, starts[console.name] - base)
        if p is None:
            continue
        if found is not None and (
            p.start() >= found_end
            if found.console == console.name
            else console._time_at(base + p.end()) > found.time
        ):
            continue
        raise ConsolePanic(
            f"console '{console.name}': panic: {record_text(_line_at(text, p.start()))!r}",
            _last_lines(watched),
        )
    return found


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


# What makes a pattern more than its text: unescaped regex syntax.
_REGEX_SYNTAX = re.compile(r"(?<!\\)(?:\\\\)*(?:[.^$*+?{}\[\]|()]|\\[A-Za-z0-9])")


def pattern_text(regex: re.Pattern[str]) -> str:
    """A pattern as a person reads it in a message: text in double quotes ("HILPROBE end",
    backslash escapes removed), a regular expression as written between slashes; never Python's
    repr, which doubles every backslash."""
    if _REGEX_SYNTAX.search(regex.pattern):
        return f"/{regex.pattern}/"
    return '"' + re.sub(r"\\(.)", r"\1", regex.pattern) + '"'


def _last_said(consoles: Sequence[Console], last: Sequence[str]) -> str:
    """The last line seen, naming the console it came from (several consoles' lines come as
    "console | text", see _last_lines)."""
    if not last:
        return "; nothing received"
    console, sep, text = last[-1].partition(" | ")
    if len(consoles) == 1 or not sep:
        console, text = consoles[0].name, last[-1]
    return f"; last line on {console}: {text!r}"


def _last_lines(consoles: Sequence[Console], n: int = LAST_LINES) -> list[str]:
    if len(consoles) == 1:
        return consoles[0]._last_lines(n)
    merged = sorted((r for c in consoles for r in c._records[-n:]), key=lambda r: r.time)
    return [f"{r.console} | {r.text}" for r in merged[-n:]]


class ConsoleGroup:
    """All consoles of one board (FVP/Juno have secure- and normal-world UARTs), captured together:
    one merged timeline, waits that watch every console for panics."""

    def __init__(
        self,
        urls: Mapping[str, str],
        log_dir: Path,
        *,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        panic_patterns: Iterable[str] | Mapping[str, Iterable[str]] = PANIC_PATTERNS,
        connect_now: bool = True,
    ) -> None:
        """``connect_now=False``: the board's consoles may not listen yet (see Console.open);
        every (re-)open of the group then connects in the background.

        ``panic_patterns``: the same patterns for every console, or per console name (a console
        the mapping does not name watches the default PANIC_PATTERNS; an empty list watches
        none), so a panic is taken only from the console that can carry it."""
        if not urls:
            raise ValueError("a console group needs at least one console")
        if isinstance(panic_patterns, Mapping):
            unknown = sorted(set(panic_patterns) - set(urls))
            if unknown:
                raise ValueError(f"panic patterns for unknown consoles: {', '.join(unknown)}")
            per_console = {n: tuple(panic_patterns.get(n, PANIC_PATTERNS)) for n in urls}
        else:
            patterns = tuple(panic_patterns)
            per_console = dict.fromkeys(urls, patterns)
        cond = threading.Condition()
        self.consoles = {
            name: Console(
                name,
                url,
                log_dir,
                reconnect=reconnect,
                panic_patterns=per_console[name],
                condition=cond,
            )
            for name, url in urls.items()
        }
        self.connect_now = connect_now
        self._timeline: list[ConsoleRecord] = []
        for console in self.consoles.values():
            console.subscribe(on_record=self._timeline.append)

    def open(self) -> ConsoleGroup:
        opened: list[Console] = []
        try:
            for console in self.consoles.values():
                opened.append(console.open(self.connect_now))
        except BaseException:
            for console in opened:
                console.close()
            raise
        return self

    def close(self) -> None:
        # Stop every reader first, so their last idle waits overlap instead of adding up.
        for console in self.consoles.values():
            console.request_stop()
        for console in self.consoles.values():
            console.close()
        # A capture with a hole is no evidence: the case ends as an infra error.
        for console in self.consoles.values():
            if console.capture_error is not None:
                raise console.capture_error

    def retarget(self, urls: Mapping[str, str]) -> None:
        """Point the (closed) consoles at new URLs; captures go on in the same files."""
        for name, console in self.consoles.items():
            console.url = urls[name]

    def __enter__(self) -> ConsoleGroup:
        return self.open()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getitem__(self, name: str) -> Console:
        return self.consoles[name]

    def subscribe(
        self,
        on_chunk: Callable[[ConsoleChunk], None] | None = None,
        on_record: Callable[[ConsoleRecord], None] | None = None,
    ) -> None:
        for console in self.consoles.values():
            console.subscribe(on_chunk, on_record)

    @property
    def lost(self) -> ConsoleLost | None:
        return next((c.lost for c in self.consoles.values() if c.lost is not None), None)

    def mark(self) -> dict[str, int]:
        return {name: console.mark() for name, console in self.consoles.items()}

    def raw_marks(self) -> dict[str, int]:
        """Each console's Console.raw_mark."""
        return {name: console.raw_mark() for name, console in self.consoles.items()}

    @property
    def reconnects(self) -> dict[str, int]:
        """How many times each console was re-opened after a drop."""
        return {name: console.reconnects for name, console in self.consoles.items()}

    def gaps(self, since: datetime | None = None) -> list[ConsoleGap]:
        """Every console's gaps (see Console.gaps) in the order they began: if this is not
        empty for ``since`` = a case's start, bytes of the case may be missing."""
        found = [g for c in self.consoles.values() for g in c.gaps(since)]
        return sorted(found, key=lambda g: g.lost)

    def timeline(self) -> list[ConsoleRecord]:
        """Every line of every console, in arrival order (each carries its console's name)."""
        first = next(iter(self.consoles.values()))
        with first._cond:
            return list(self._timeline)

    def last_lines(self, n: int = LAST_LINES) -> list[str]:
        first = next(iter(self.consoles.values()))
        with first._cond:
            return _last_lines(list(self.consoles.values()), n)

    def expect(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        since: Mapping[str, int] | None = None,
        console: str | None = None,
    ) -> ConsoleMatch:
        """Wait for ``pattern`` on ``console`` (default: any); a panic on any console ends it."""
        everyone = list(self.consoles.values())
        targets = [self.consoles[console]] if console else everyone
        return expect_any(targets, pattern, timeout, since, watch=everyone)
