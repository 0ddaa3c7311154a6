"""The boot stage machine: power-cycle a board, then wait for its boot stages one by one on its
consoles, each within its timeout, and say how far it got. A stage that never arrives or a lost
console means the lab is broken (infra error: power-cycle and try again, a bounded number of
times); a panic means the firmware is wrong (reported at once, never retried)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from tenacity import (
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from hil import results
from hil.console import (
    ConsoleError,
    ConsoleGroup,
    ConsoleLost,
    ConsolePanic,
    ConsoleTimeout,
    record_text,
)
from hil.errors import ExitCode, InfraError
from hil.lab import Stage
from hil.power import PowerBackend

# After the last stage: how long bytes already sent may still be on their way to the host, and
# how long the console readers get to record everything that reached it (BootMachine._drain).
# SETTLE_S is for consoles with something between the board and the host (boards say otherwise:
# hil.boards.LaunchedBoard.console_latency_s).
SETTLE_S = 0.05  # a few times an FTDI adapter's default 16 ms latency timer
SYNC_TIMEOUT_S = 10.0

# The end of a console line (its "\r" may come before it, or not at all).
_LINE_END = re.compile("\n")
# How long the rest of a line whose marker arrived may take, even past the stage's timeout.
_LINE_END_GRACE_S = 1.0


class StageStatus(StrEnum):
    PASSED = "passed"
    STALLED = "stalled"  # its marker did not come in time
    PANIC = "panic"
    LOST = "lost"  # the console went away while waiting
    NOT_REACHED = "not-reached"  # an earlier stage failed

    def reported(self) -> results.StageStatus:
        """How a run report shows this stage. A lost console and a stall both mean the board
        never got the stage done in time: reports (JSON schema, HTML, JUnit) have one status for
        that, and the case message says which it was."""
        return _REPORTED[self]


_REPORTED = {
    StageStatus.PASSED: results.StageStatus.OK,
    StageStatus.STALLED: results.StageStatus.TIMEOUT,
    StageStatus.LOST: results.StageStatus.TIMEOUT,
    StageStatus.PANIC: results.StageStatus.PANIC,
    StageStatus.NOT_REACHED: results.StageStatus.NOT_REACHED,
}


class BootStatus(StrEnum):
    BOOTED = "booted"
    PANIC = "panic"
    INFRA = "infra-error"

    @property
    def exit_code(self) -> ExitCode:
        return {
            BootStatus.BOOTED: ExitCode.OK,
            BootStatus.PANIC: ExitCode.CHECK_FAILED,
            BootStatus.INFRA: ExitCode.INFRA,
        }[self]


_FAILURES: dict[type[ConsoleError], tuple[StageStatus, BootStatus]] = {
    ConsoleTimeout: (StageStatus.STALLED, BootStatus.INFRA),
    ConsoleLost: (StageStatus.LOST, BootStatus.INFRA),
    ConsolePanic: (StageStatus.PANIC, BootStatus.PANIC),
}


@dataclass(frozen=True)
class StageResult:
    name: str
    status: StageStatus
    timeout_s: float
    reached_s: float | None = None  # since the power-cycle, when its marker arrived
    done_s: float | None = None  # since the power-cycle, when it finished
    console: str | None = None  # where its marker appeared


@dataclass(frozen=True)
class BootAttempt:
    number: int  # 1-based
    started: datetime  # host UTC time of the power-cycle
    status: BootStatus
    stages: tuple[StageResult, ...]
    error: str | None = None  # one line: why it did not boot
    last_lines: tuple[str, ...] = ()  # console lines seen last, when it did not boot
    ended: datetime | None = None  # host UTC time it booted or was given up
    # Where in each console's capture (<name>.raw byte offsets) this attempt's output starts,
    # taken before the reset, and where it ended when the last stage was done (booted only).
    raw_start: Mapping[str, int] = field(default_factory=dict)
    raw_end: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BootResult:
    board: str
    attempts: tuple[BootAttempt, ...]

    @property
    def final(self) -> BootAttempt:
        return self.attempts[-1]

    @property
    def status(self) -> BootStatus:
        return self.final.status

    @property
    def stages(self) -> tuple[StageResult, ...]:
        return self.final.stages

    @property
    def error(self) -> str | None:
        return self.final.error

    @property
    def last_lines(self) -> tuple[str, ...]:
        return self.final.last_lines


@dataclass(frozen=True)
class RetryPolicy:
    """Whole-boot retries for infrastructure failures (each one power-cycles the board again)."""

    attempts: int = 3
    wait_initial_s: float = 1.0
    wait_max_s: float = 30.0
    # Set when the run is interrupted: no further attempt, and the backoff wait ends at once.
    cancel: threading.Event | None = None


@dataclass(frozen=True)
class BootProgress:
    """What a boot is doing, for whoever shows it live: attempt ``attempt`` now waits for
    ``stage``, or (``error`` set) that attempt just failed."""

    attempt: int
    stage: str | None = None
    error: str | None = None


Watch = Callable[[BootProgress], None]

# Where a board's consoles are now (name -> URL), asked before re-opening a lost one: a labgrid
# exporter restart can move them (BoardSession.refresh_consoles).
Relocate = Callable[[], Mapping[str, str]]
# Asked about each attempt that booted: why its output cannot be judged (bytes possibly lost,
# damaged lines), or None. A reason makes the attempt an infrastructure failure, retried.
Accept = Callable[[BootAttempt], str | None]


class BootMachine:
    def __init__(
        self,
        board: str,
        stages: Sequence[Stage],
        power: PowerBackend,
        consoles: ConsoleGroup,
        retry: RetryPolicy = RetryPolicy(),
        relocate: Relocate | None = None,
        watch: Watch | None = None,
        accept: Accept | None = None,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.board, self.stages, self.power, self.consoles = board, tuple(stages), power, consoles
        self.retry = retry
        self.settle_s = settle_s
        self.relocate = relocate
        self.watch = watch
        self.accept = accept
        self._attempts: list[BootAttempt] = []

    def run(self) -> BootResult:
        """Boot until it boots, panics, or ``retry.attempts`` infra failures happened."""
        self._attempts = []
        cancel = self.retry.cancel or threading.Event()
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts) | stop_when_event_set(cancel),
            wait=wait_exponential(multiplier=self.retry.wait_initial_s, max=self.retry.wait_max_s),
            sleep=cancel.wait,
            retry=retry_if_result(lambda a: a.status is BootStatus.INFRA),
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        retrying(self._attempt)
        return BootResult(self.board, tuple(self._attempts))

    def _attempt(self) -> BootAttempt:
        number = len(self._attempts) + 1
        started = datetime.now(UTC)
        results: list[StageResult] = []
        try:
            if self.consoles.lost is not None:
                # Lost in the previous attempt: the board (or ser2net) may be back by now.
                self.consoles.close()
                if self.relocate is not None:
                    self.consoles.retarget(self.relocate())
                self.consoles.open()
            marks = self.consoles.mark()  # before the reset: nothing the boot prints is missed
            raw_start = self.consoles.raw_marks()
            started = datetime.now(UTC)
            self.power.reset()
        except InfraError as exc:
            attempt = self._failed(number, started, results, BootStatus.INFRA, str(exc), ())
        else:
            attempt = self._wait_stages(number, started, dict(marks), results)
            attempt = replace(attempt, raw_start=raw_start)
            if attempt.status is BootStatus.BOOTED:
                undrained = self._drain()
                attempt = replace(attempt, raw_end=self.consoles.raw_marks())
                attempt = (
                    self._late_panic(attempt, marks)
                    or self._undrained(attempt, undrained)
                    or self._accepted(attempt)
                )
        attempt = replace(attempt, ended=datetime.now(UTC))
        self._attempts.append(attempt)
        if attempt.status is BootStatus.INFRA and attempt.error:
            self._tell(BootProgress(number, error=attempt.error))
        return attempt

    def _drain(self) -> list[str]:
        """Before anything is judged: every byte that reached the host by the end of the boot is
        in the captures (the names of consoles whose reader could not say so). Each UART has its
        own path to the host: a panic the secure world printed before the probe's last line can
        reach its reader after that line was matched on the normal console, and judging then
        would miss it (a false PASS). ``settle_s`` first covers bytes still on their way (a
        USB-serial adapter's latency timer, a terminal server's buffering)."""
        if self.settle_s > 0:
            time.sleep(self.settle_s)
        return self.consoles.sync(SYNC_TIMEOUT_S)

    def _undrained(self, attempt: BootAttempt, names: Sequence[str]) -> BootAttempt | None:
        if not names:
            return None
        message = (
            f"board '{self.board}': not judged: console(s) {', '.join(names)} not read to the end "
            f"of the boot within {SYNC_TIMEOUT_S:g} s (the host may be overloaded)"
        )
        return replace(attempt, status=BootStatus.INFRA, error=message)

    def _late_panic(self, attempt: BootAttempt, marks: Mapping[str, int]) -> BootAttempt | None:
        """``attempt`` (booted) as a panic if any console printed one since its reset: a panic
        on one UART that reached the host a hair after the last stage's marker on another is
        still the board panicking during the boot."""
        for name, console in self.consoles.consoles.items():
            text = console.text(marks[name]) if console.panic else ""
            found = console.panic.search(text) if console.panic else None
            if found is not None:
                line = text[text.rfind("\n", 0, found.start()) + 1 :].split("\n", 1)[0]
                message = f"board '{self.board}': console '{name}': panic: {record_text(line)!r}"
                return replace(attempt, status=BootStatus.PANIC, error=message)
        return None

    def _accepted(self, attempt: BootAttempt) -> BootAttempt:
        """``attempt`` (booted), or an infra failure when its output cannot be judged."""
        why = self.accept(attempt) if self.accept is not None else None
        if why is None:
            return attempt
        message = f"board '{self.board}': {why}"
        return replace(attempt, status=BootStatus.INFRA, error=message)

    def _tell(self, progress: BootProgress) -> None:
        if self.watch is not None:
            self.watch(progress)

    def _wait_stages(
        self, number: int, started: datetime, marks: dict[str, int], results: list[StageResult]
    ) -> BootAttempt:
        def since(when: datetime) -> float:
            return (when - started).total_seconds()

        for stage in self.stages:
            # Each stage's timeout runs from the end of the previous one (or the power-cycle).
            self._tell(BootProgress(number, stage.name))
            t0 = datetime.now(UTC)
            awaited = stage.shows
            try:
                hit = self.consoles.expect(stage.marker, stage.timeout_s, marks, stage.console)
                marks[hit.console] = hit.end
                reached, done = since(hit.time), since(hit.time)
                if stage.done is not None:
                    # A stall from here on is after the stage began: say what it stopped short of.
                    awaited = f"{stage.done_shows} (after its {stage.shows})"
                    left = stage.timeout_s - (datetime.now(UTC) - t0).total_seconds()
                    end = self.consoles.expect(stage.done, max(left, 0.0), marks, stage.console)
                    marks[end.console] = end.end
                    done = since(end.time)
                    if stage is self.stages[-1]:
                        # ... and the boot's last line whole: the boot is judged from what had
                        # arrived then, and a guest's end line says more after its marker
                        # ("HILLINUX end devices=2"), which can reach the host a read later.
                        # (Not for other stages: a board may send a line's end with its next.)
                        left = stage.timeout_s - (datetime.now(UTC) - t0).total_seconds()
                        grace = max(left, _LINE_END_GRACE_S)
                        whole = self.consoles.expect(_LINE_END, grace, marks, end.console)
                        marks[whole.console] = whole.end
            except ConsoleError as exc:
                stage_status, boot_status = _FAILURES[type(exc)]
                results.append(StageResult(stage.name, stage_status, stage.timeout_s))
                why = self._stalled(stage, awaited, exc) if isinstance(exc, ConsoleTimeout) else exc
                message = f"board '{self.board}': stage '{stage.name}': {why}"
                return self._failed(number, started, results, boot_status, message, exc.last_lines)
            results.append(
                StageResult(
                    stage.name, StageStatus.PASSED, stage.timeout_s, reached, done, hit.console
                )
            )
        return BootAttempt(number, started, BootStatus.BOOTED, tuple(results))

    def _stalled(self, stage: Stage, awaited: str, exc: ConsoleTimeout) -> str:
        """A stall in words: the marker ``awaited`` as written (never the regex built from it),
        where it was awaited, and the last line seen, naming the console it came from."""
        where = f"console '{stage.console}'" if stage.console else "any console"
        text = f"no {awaited} on {where} within {stage.timeout_s:g} s"
        if not exc.last_lines:
            return f"{text}; nothing received"
        last = exc.last_lines[-1]
        names = list(self.consoles.consoles)
        # With several consoles the lines come as "console | text" (hil.console); with one,
        # the line is that console's.
        console, sep, line = last.partition(" | ") if len(names) > 1 else (names[0], "|", last)
        return f"{text}; last line on {console}: {line!r}" if sep else f"{text}; last: {last!r}"

    def _failed(
        self,
        number: int,
        started: datetime,
        results: list[StageResult],
        status: BootStatus,
        error: str,
        last_lines: tuple[str, ...],
    ) -> BootAttempt:
        done = {r.name for r in results}
        rest = [
            StageResult(s.name, StageStatus.NOT_REACHED, s.timeout_s)
            for s in self.stages
            if s.name not in done
        ]
        return BootAttempt(number, started, status, (*results, *rest), error, last_lines)


def boot(
    board: str,
    stages: Sequence[Stage],
    power: PowerBackend,
    consoles: ConsoleGroup,
    retry: RetryPolicy = RetryPolicy(),
    relocate: Relocate | None = None,
    watch: Watch | None = None,
    accept: Accept | None = None,
    settle_s: float = SETTLE_S,
) -> BootResult:
    """Power-cycle ``board`` and follow its boot through ``stages`` on ``consoles`` (open);
    ``watch`` hears of each stage awaited and each failed attempt; ``accept`` may refuse the
    output of an attempt that booted (see Accept); ``settle_s``: how long bytes the board sent
    may take to reach the host (BootMachine._drain)."""
    machine = BootMachine(board, stages, power, consoles, retry, relocate, watch, accept, settle_s)
    return machine.run()
