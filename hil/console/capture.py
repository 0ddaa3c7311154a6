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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

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

from hil.console.capscan import Needles, Scanner, line_text
from hil.console.finder import Finder
from hil.console.model import (
    DEFAULT_RECONNECT,
    LAST_LINES,
    PANIC_PATTERNS,
    ConsoleChunk,
    ConsoleGap,
    ConsoleLost,
    ConsoleMatch,
    ConsoleRecord,
    ReconnectPolicy,
    record_text,
)
from hil.console.ports import close_port, open_port, read_port, wait_readable
from hil.xen.log import format_capture_line

log = logging.getLogger(__name__)

# How long the reader idles between looks: short enough that close() reacts quickly.
_IDLE_S = 0.02
_DRAIN_S = 0.5
# Large reads: every read costs the same fixed work, so a fast board is read in few of them.
_READ_CHUNK = 1 << 18
# Decoded text kept in memory for waits that start from a mark and for the last lines: at least
# this much, at most twice it. Waits are searched as text arrives, so this bounds memory only.
_WINDOW = 2 << 20
# A line longer than this is written to the .log in pieces, and a wait re-searches at most this
# much of the line in progress (a match is sought within one line, or one read).
_MAX_LINE = 64 << 10
_KEEP_BREAKS = 1000  # line ends without a newline (drops, closes) remembered for records()
_KEEP_PANICS = 1000


@dataclass(frozen=True)
class PanicHit:
    """A panic pattern matched: text offsets of the match, when it arrived, its line."""

    start: int
    end: int
    time: datetime
    line: str


@dataclass(eq=False)
class Wait:
    """A wait in progress: the reader thread searches each console's new text for it as the
    text arrives; ``hits`` holds each console's first match after its mark."""

    finder: Finder
    starts: dict[str, int]
    hits: dict[str, ConsoleMatch] = field(default_factory=dict)


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
        self._panic_finder = Finder(self.panic) if self.panic is not None else None
        self._reconnect = reconnect
        # Shared by a ConsoleGroup so one wait can watch every console of a board.
        self._cond = condition or threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._go = threading.Event()  # the reader may connect and read (open)
        self._wake: tuple[int, int] | None = None
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._raw: BinaryIO | None = None
        self._log: BinaryIO | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # The decoded text still in memory (see _WINDOW), as it arrived.
        self._chunks: list[str | bytes] = []  # bytes: ASCII
        self._text_len = 0  # decoded text ever received
        self._dropped = 0  # text offset where the kept chunks start
        self._chunk_ends: list[int] = []  # text offset after each chunk ...
        self._chunk_times: list[datetime] = []  # ... and when it arrived
        self._breaks: list[int] = []  # text offsets where a line ended without a newline
        # The line in progress as the searches see it: the text from _tail_base on, after one
        # character of context when the line is longer than _MAX_LINE.
        self._tail = ""
        self._tail_base = 0
        self._tail_pre = ""
        self._panics: list[PanicHit] = []
        self._panic_next = 0  # panics are recorded from this text offset on
        self._waits: list[Wait] = []
        # The reader's passes over each read, and the literals its searches last looked for.
        self._scanner: Scanner | None = None
        self._needles: tuple[tuple[tuple[str, ...] | None, ...], Needles, tuple[str, ...]] | None
        self._needles = None
        # The line in progress as the .log will have it: its raw bytes, when it started.
        self._partial = bytearray()
        self._partial_time: datetime | None = None
        self._chunk_hooks: list[Callable[[ConsoleChunk], None]] = []
        self._record_hooks: list[Callable[[ConsoleRecord], None]] = []
        self._lost: ConsoleLost | None = None
        # sync(): requests asked, and the newest one answered by a read that found nothing left.
        self._sync_asked = 0
        self._sync_done = 0
        self._raw_len = 0
        self._gaps: list[ConsoleGap] = []
        self.reconnects = 0
        # Writing the capture failed (a full disk): it has a hole, so nothing judged from it
        # may stand. Sticky until the console object is gone.
        self.capture_error: ConsoleLost | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def prepare(self) -> Console:
        """Open the capture files and start the reader, which connects only once ``open`` says
        so: what opening costs (file creation, a thread's start) can be paid before the case
        needs its console, e.g. while the board boots the case before (hil.ahead). ``close``
        ends it, ``discard`` also removes the capture files it made if nothing was captured."""
        if self._thread is not None:
            return self
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._go.clear()
        raw = self.raw_path.open("ab")
        try:
            self._log = self.log_path.open("ab")
        except BaseException:
            raw.close()
            raise
        self._raw = raw
        self._raw_len = raw.tell()  # byte offsets count from the start of the file
        # Written on stop and sync so the reader leaves its idle wait at once instead of at its
        # timeout; the reader empties it (non-blocking) after each wait.
        self._wake = os.pipe()
        self._scanner = self._scanner or Scanner()
        os.set_blocking(self._wake[0], False)
        self._thread = threading.Thread(target=self._run, name=f"console-{self.name}", daemon=True)
        self._thread.start()
        return self

    def open(self, connect_now: bool = True) -> Console:
        """Start capturing (again, after ``close``: the capture files are appended to).

        ``connect_now=False``: nothing needs to listen yet; the reader connects as soon as
        something does (within ``ReconnectPolicy.first_connect_s``), so a board that starts
        sending only once its consoles are connected loses no byte."""
        port = None
        if connect_now:
            try:
                port = open_port(self.url)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise ConsoleLost(f"console '{self.name}': cannot open {self.url}: {exc}") from exc
        try:
            self.prepare()
        except BaseException:
            if port is not None:
                close_port(port)
            raise
        self._port = port
        with self._cond:
            self._lost = None
            if self._port is not None:
                self._gap_ends()
        self._go.set()
        return self

    @property
    def started(self) -> bool:
        """Prepared or open: its reader and capture files need ``close``."""
        return self._thread is not None

    def request_stop(self) -> None:
        """Ask the reader to stop without waiting for it (``close`` waits)."""
        self._stop.set()
        self._go.set()
        self._poke()

    def _poke(self) -> None:
        """Wake the reader from its idle wait."""
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"\0")

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
            self._end_line(_now())
            self._cond.notify_all()
        for f in (self._raw, self._log):
            if f is not None:
                try:
                    f.close()
                except OSError as exc:
                    self._capture_failed(exc)
        self._raw = self._log = None

    def discard(self) -> None:
        """Close a console that was prepared and maybe never opened; capture files that
        captured nothing are removed (the case that was to use them never ran)."""
        self.close()
        for path in (self.raw_path, self.log_path):
            with contextlib.suppress(OSError):
                if path.stat().st_size == 0:
                    path.unlink()

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
        """The lines still in memory (the last _WINDOW of text or more), oldest first: each
        complete line, and one a drop or close ended; the .log has every line."""
        with self._cond:
            return self._records()

    def gaps(self, since: datetime | None = None) -> list[ConsoleGap]:
        """The times this console was disconnected while open (a drop it reconnected after, or
        one it never recovered from), oldest first; with ``since``, only those that may have
        cost bytes sent at or after that time."""
        with self._cond:
            return [g for g in self._gaps if since is None or g.overlaps(since)]

    def sync(self, timeout: float) -> bool:
        """Wait until the reader has recorded every byte that reached the host before this call
        (a read made after it found nothing more): what the board sent on this console before
        whatever the caller just saw on another one is then in the capture. True when done or
        the console is gone (it reads nothing more); False if the reader did not get there in
        ``timeout`` s (e.g. it is reconnecting)."""
        with self._cond:
            if self._lost is not None or self._thread is None:
                return True
            self._sync_asked += 1
            ticket = self._sync_asked
            self._poke()  # an idle reader answers now, not at the end of its wait
            return self._cond.wait_for(
                lambda: self._sync_done >= ticket or self._lost is not None, timeout
            )

    def expect(
        self, pattern: str | re.Pattern[str], timeout: float, since: int | None = None
    ) -> re.Match[str]:
        from hil.console.wait import expect_any  # the wait module builds on this one

        marks = None if since is None else {self.name: since}
        return expect_any([self], pattern, timeout, marks).match

    # -- reader thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        self._go.wait()  # set by open, or by a close of a console only prepared
        if self._stop.is_set() or (self._port is None and not self._connect_late()):
            return
        while not self._stop.is_set():
            try:
                assert self._port is not None
                asked = self._sync_asked  # before the read: an empty read answers it
                data = read_port(self._port, _READ_CHUNK)
                if not data:
                    self._synced(asked)
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
                data = read_port(self._port, _READ_CHUNK)
                if not data or not self._ingest(data):
                    return

    def _synced(self, asked: int) -> None:
        if asked > self._sync_done:
            with self._cond:
                self._sync_done = asked
                self._cond.notify_all()

    def _idle(self, port: serial.SerialBase) -> None:
        wake = self._wake[0] if self._wake is not None else None
        wait_readable(port, _IDLE_S, wake)
        if wake is not None:
            with contextlib.suppress(OSError):  # BlockingIOError: nobody woke it
                os.read(wake, 64)

    def _close_port(self) -> None:
        with self._write_lock:
            if self._port is not None:
                close_port(self._port)
                self._port = None

    def _connect_late(self) -> bool:
        policy = self._reconnect
        connected = self._connect(
            stop_after_delay(policy.first_connect_s),
            wait_fixed(policy.first_connect_poll_s),
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
            self._end_line(now)
            gap = ConsoleGap(self.name, now, None, self._raw_len, self._text_len, str(cause))
            self._gaps.append(gap)
            self._write_log(f"{_stamp(now)} {self.name} ! disconnected: {record_text(str(cause))}")
            self._cond.notify_all()

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
        # ASCII, with no character begun in an earlier read, is its own text one for one: it is
        # kept and searched as bytes, and only the parts a search or a reader needs are decoded.
        text: str | bytes = data
        if not data.isascii() or self._decoder.getstate()[0]:
            text = self._decoder.decode(data)
        records: list[ConsoleRecord] = []
        self._write_log_bytes(*self._log_lines(data, now, records if self._record_hooks else None))
        with self._cond:
            start = self._text_len
            self._add_text(text, now)
            if self._scan(start, text):
                self._cond.notify_all()
            chunk_hooks = list(self._chunk_hooks)
            record_hooks = list(self._record_hooks)
        if chunk_hooks:
            chunk = ConsoleChunk(now, self.name, data, _as_str(text))
            for hook in chunk_hooks:
                _call_hook(hook, chunk)
        for record in records:
            for record_hook in record_hooks:
                _call_hook(record_hook, record)
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

    # -- the .log (reader thread) ----------------------------------------------------------------

    def _log_lines(
        self, data: bytes, now: datetime, records: list[ConsoleRecord] | None
    ) -> list[bytes | memoryview]:
        """The .log lines ``data`` completes, in pieces: made by ``Scanner.log_lines`` (one
        pass), or line by line with their records for the line hooks."""
        newline = data.rfind(b"\n")
        if newline < 0:
            if not self._partial:
                self._partial_time = now
            self._partial += data
            if len(self._partial) < _MAX_LINE:
                return []
            return [self._flush_partial(records)]
        head = self._partial_time if self._partial else now
        prefix = self._prefix(now)
        if records is None:
            assert self._scanner is not None
            pieces: list[bytes | memoryview] = [self._prefix(head)]
            start = 0
            if self._partial:  # the first line began in an earlier read
                start = data.find(b"\n") + 1
                first = bytes(self._partial) + data[:start]
                pieces.append(b"".join(self._scanner.log_lines(first, 0, len(first), prefix)))
                if start <= newline:
                    pieces.append(prefix)
            if start <= newline:
                pieces += self._scanner.log_lines(data, start, newline + 1, prefix)
            rest = data[newline + 1 :]
            self._partial = bytearray(rest)
            self._partial_time = now if rest else None
            return pieces
        complete = bytes(self._partial) + data[:newline] if self._partial else data[:newline]
        self._partial = bytearray(data[newline + 1 :])
        self._partial_time = now if self._partial else None
        out: list[bytes | memoryview] = []
        for i, line in enumerate(complete.split(b"\n")):
            record = ConsoleRecord(head if i == 0 else now, self.name, line_text(line))
            out.append((self._prefix(head) if i == 0 else prefix) + record.text.encode() + b"\n")
            if records is not None:
                records.append(record)
        return out

    def _flush_partial(self, records: list[ConsoleRecord] | None) -> bytes:
        """The line in progress as a .log line (a drop or close ended it, or it is too long)."""
        if not self._partial:
            return b""
        record = ConsoleRecord(self._partial_time or _now(), self.name, line_text(self._partial))
        self._partial, self._partial_time = bytearray(), None
        if records is not None:
            records.append(record)
        return self._prefix(record.time) + record.text.encode() + b"\n"

    def _prefix(self, when: datetime) -> bytes:
        return format_capture_line(when, self.name, "").encode()

    def _end_line(self, now: datetime) -> None:
        """(Condition held.) A drop or close ends the line in progress, in the .log and for the
        searches, so no line splices text from both sides; a character it cut is not completed
        by bytes from after it."""
        if tail := self._decoder.decode(b"", final=True):
            start = self._text_len
            self._add_text(tail, now)
            self._scan(start, tail)
        self._decoder.reset()
        records: list[ConsoleRecord] = []
        self._write_log_bytes(self._flush_partial(records if self._record_hooks else None))
        for record in records:
            for hook in self._record_hooks:
                _call_hook(hook, record)
        if self._tail or self._tail_pre:  # the line in progress is not empty
            self._breaks = [*self._breaks[-_KEEP_BREAKS:], self._text_len]
        self._tail, self._tail_pre, self._tail_base = "", "", self._text_len

    def _write_log(self, line: str) -> None:
        self._write_log_bytes(line.encode() + b"\n")

    def _write_log_bytes(self, *pieces: bytes | memoryview) -> None:
        if self._log is not None and any(pieces):
            try:
                for piece in pieces:
                    self._log.write(piece)
                self._log.flush()
            except OSError as exc:
                self._capture_failed(exc)

    # -- the text in memory and its searches (condition held) ------------------------------------

    def _add_text(self, text: str | bytes, now: datetime) -> None:
        if not text:
            return
        self._chunks.append(text)
        self._text_len += len(text)
        self._chunk_ends.append(self._text_len)
        self._chunk_times.append(now)
        if self._text_len - self._dropped > 2 * _WINDOW:
            keep = bisect.bisect_right(self._chunk_ends, self._text_len - _WINDOW)
            keep = min(keep, len(self._chunks) - 1)
            self._dropped = self._chunk_ends[keep - 1] if keep else self._dropped
            del self._chunks[:keep], self._chunk_ends[:keep], self._chunk_times[:keep]

    def _scan(self, start: int, text: str | bytes) -> bool:
        """Search the text that arrived (``text``, from offset ``start``; bytes: ASCII) with the
        line it continues for panics and for the waits in progress; True when one of them found
        something."""
        found = False
        searched = ""
        first = len(self._tail_pre)
        if isinstance(text, str) or self._may_match(text):
            searched = self._tail_pre + self._tail + _as_str(text)
            found = self._search(searched, self._tail_base - first, first)
        # The line in progress is searched again with the next text.
        newline = text.rfind(b"\n" if isinstance(text, bytes) else "\n")
        if newline >= 0:
            self._tail, self._tail_pre = _as_str(text[newline + 1 :]), ""
            self._tail_base = start + newline + 1
            return found
        # A read without a newline (a short one, or a line longer than a read).
        searched = searched or self._tail_pre + self._tail + _as_str(text)
        if len(searched) - first > _MAX_LINE:
            keep = searched[-_MAX_LINE - 1 :]
            self._tail_pre, self._tail = keep[:1], keep[1:]
            self._tail_base = self._text_len - len(self._tail)
        else:
            self._tail = searched[first:]
        return found

    def _may_match(self, data: bytes) -> bool:
        """Whether a search of the line in progress and ``data`` (ASCII text) can find
        anything: False when every search has literals and none of them is there, which one
        pass over ``data`` for all of them shows (the search for each literal, then the line
        around it, would take one pass per literal)."""
        finders = [] if self._panic_finder is None else [self._panic_finder]
        finders += [w.finder for w in self._waits if self.name not in w.hits]
        key = tuple(f.literals for f in finders)
        if None in key:
            return True  # a search without literals reads every line
        if self._needles is None or self._needles[0] != key:
            literals = tuple(dict.fromkeys(lit for lits in key if lits for lit in lits))
            needles = Needles(tuple(lit.encode() for lit in literals))
            self._needles = (key, needles, literals)
        _, needles, literals = self._needles
        if not literals:
            return False
        assert self._scanner is not None
        if self._scanner.find_any(data, needles) >= 0:
            return True
        # A literal in the line in progress (its line may match now), or across its end.
        longest = max(len(lit) for lit in literals)
        head = self._tail_pre + self._tail + data[: longest - 1].decode("ascii")
        return any(lit in head for lit in literals)

    def _search(self, searched: str, base: int, first: int) -> bool:
        """Search ``searched`` (text offset ``base``) from ``first`` on for panics and for the
        waits in progress."""
        found = False
        if self._panic_finder is not None:
            at = max(first, self._panic_next - base)
            while (m := self._panic_finder.search(searched, at)) is not None:
                self._panic_next = base + m.end()
                when = self._time_at(base + m.end())
                hit = PanicHit(
                    base + m.start(), base + m.end(), when, _line_at(searched, m.start())
                )
                self._panics = [*self._panics[-_KEEP_PANICS:], hit]
                found = True
                at = max(m.end(), at + 1)
        for wait in self._waits:
            if self.name in wait.hits:
                continue
            m = wait.finder.search(searched, max(first, wait.starts[self.name] - base))
            if m is not None:
                end = base + m.end()
                wait.hits[self.name] = ConsoleMatch(self.name, m, end, self._time_at(end))
                found = True
        return found

    def _register(self, wait: Wait) -> None:
        """Start ``wait`` here: search what is in memory after its mark, then (if nothing was
        found) every read as it arrives."""
        start = wait.starts[self.name]
        base, text = self._window(start)
        m = wait.finder.search(text, max(start - base, 0))
        if m is not None:
            end = base + m.end()
            wait.hits[self.name] = ConsoleMatch(self.name, m, end, self._time_at(end))
            return
        self._waits.append(wait)

    def _unregister(self, wait: Wait) -> None:
        with contextlib.suppress(ValueError):
            self._waits.remove(wait)

    def _first_panic(self, since: int) -> PanicHit | None:
        return next((p for p in self._panics if p.start >= since), None)

    def _window(self, offset: int) -> tuple[int, str]:
        """``(base, text)``: the decoded text in memory from just before ``offset`` on. It starts
        one chunk early so that ``^`` and ``\\b`` at ``offset`` see the character before it."""
        i = max(bisect.bisect_right(self._chunk_ends, offset) - 1, 0)
        base = self._chunk_ends[i - 1] if i else self._dropped
        return base, "".join(map(_as_str, self._chunks[i:]))

    def _time_at(self, offset: int) -> datetime:
        """When the character just before ``offset`` arrived."""
        if not self._chunk_times:
            return _now()
        i = bisect.bisect_left(self._chunk_ends, offset)
        return self._chunk_times[min(i, len(self._chunk_times) - 1)]

    def _records(
        self, tail_chars: int | None = None, last: int | None = None
    ) -> list[ConsoleRecord]:
        """The lines in memory (or in its last ``tail_chars``) as records: complete lines and
        lines a drop or close ended; the first is left out when it may be cut. ``last``: only
        the last ``last`` of them (the others are not made: each line costs its escaping, and
        every close asks for the last lines)."""
        base, text = self._window(self._dropped)
        cut = base > 0
        if tail_chars is not None and len(text) > tail_chars:
            text, base, cut = text[-tail_chars:], base + len(text) - tail_chars, True
        ends = sorted(
            {base + i for i in _newlines(text)}
            | {b for b in self._breaks if base < b <= base + len(text)}
        )
        start = base
        if last is not None and len(ends) > last:
            # Where the loop below would start the first of the last lines.
            end = ends[-last - 1]
            start = end + 1 if end - base < len(text) and text[end - base] == "\n" else end
            ends = ends[-last:]
        records = []
        for end in ends:
            if not cut or start > base:
                line = record_text(text[start - base : end - base])
                records.append(ConsoleRecord(self._time_at(start + 1), self.name, line))
            start = end + 1 if end - base < len(text) and text[end - base] == "\n" else end
        return records

    def _last_lines(self, n: int = LAST_LINES) -> list[str]:
        lines = [r.text for r in self._records(tail_chars=_MAX_LINE, last=n)]
        if self._tail or self._tail_pre:
            lines.append(record_text(self._tail))
        return lines[-n:]


def _as_str(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("ascii")


def _newlines(text: str) -> list[int]:
    out = []
    i = text.find("\n")
    while i >= 0:
        out.append(i)
        i = text.find("\n", i + 1)
    return out


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


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
