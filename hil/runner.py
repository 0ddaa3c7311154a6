"""A run: every selected board x scenario, boards in parallel (one worker per board, its scenarios
in sequence), ending in results/<run-id>/ with the three reports and results/latest pointing at
it. Ctrl-C stops starting new cases, marks what did not run as not run, writes the reports and
releases every board. A board whose boots keep failing (``offline_after`` infra errors in a row)
is taken offline for the rest of the run: its remaining cases are not run, saying why."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from hil import __version__
from hil.ahead import BundlesAhead
from hil.atomic import atomic_write
from hil.boot import BootProgress, RetryPolicy
from hil.case import CaseSettings, case_consoles, run_case
from hil.console import ConsoleGroup
from hil.errors import ExitCode, HilError, InfraError, os_error_text
from hil.interrupts import interrupts_ignored
from hil.lab import BoardConfig, Lab
from hil.lock import BoardBusy
from hil.progress import ProgressPrinter
from hil.report import summary, write_reports
from hil.results import CaseResult, RunResult, Verdict, new_run_id
from hil.scenario import Scenario
from hil.session import BoardSession

LATEST = "latest"  # results/latest -> the last run's directory


@dataclass(frozen=True)
class RunRequest:
    boards: Sequence[BoardConfig]
    scenarios: Sequence[Scenario]
    results_dir: Path
    expect_profile: str | None = None
    jobs: int = 1
    lock_wait_s: float = 0.0
    # Only these (board, scenario) pairs of boards x scenarios (``--rerun-failed``); None: all.
    only: Collection[tuple[str, str]] | None = None

    def scenarios_for(self, board: str) -> list[Scenario]:
        return [s for s in self.scenarios if self.only is None or (board, s.name) in self.only]


class Runner:
    def __init__(self, lab: Lab, request: RunRequest, progress: ProgressPrinter) -> None:
        self.lab, self.request, self.progress = lab, request, progress
        self.run_id = new_run_id()
        self.run_dir = request.results_dir / self.run_id
        self._cases: dict[tuple[str, str], CaseResult] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sessions: set[BoardSession] = set()  # boards in use, to interrupt on Ctrl-C
        self._settings = CaseSettings(
            expect_profile=request.expect_profile,
            boot_retry=RetryPolicy(attempts=lab.boot_attempts, cancel=self._stop),
            reconnect=lab.reconnect,
            provenance=_run_provenance(lab),
            watch=progress.boot_progress,
        )

    def run(self) -> RunResult:
        started = datetime.now(UTC)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfraError(f"results directory: {os_error_text(exc)}") from None
        self.progress.run_started(self.run_dir)
        try:
            return self._run(started)
        finally:
            # Reports that could not be written, or a bug, end the run too: its status lines
            # and heartbeats must stop with it, not go on writing to whoever owns the stream.
            self.progress.close()

    def _run(self, started: datetime) -> RunResult:
        interrupted = False
        pool = ThreadPoolExecutor(max_workers=max(1, self.request.jobs), thread_name_prefix="board")
        futures = [pool.submit(self._board_worker, board) for board in self.request.boards]
        with contextlib.ExitStack() as ending:
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (hil.interrupts)
                interrupted = True
            finally:
                # The run is ending: a further Ctrl-C or SIGTERM must not cut short the boards'
                # release or the reports of what finished.
                ending.enter_context(interrupts_ignored(restore=not interrupted))
                if interrupted:
                    self._interrupt(futures)
                pool.shutdown(wait=True, cancel_futures=True)
                # results/latest is the last run, whatever became of it (failed, interrupted,
                # even cut short by a bug): its captures are there to read.
                _point_latest(self.request.results_dir, self.run_id)
            run = RunResult(
                run_id=self.run_id,
                lab_file=str(self.lab.path),
                started=started,
                finished=datetime.now(UTC),
                cases=self._all_cases(started),
                interrupted=interrupted,
                provenance=self._settings.provenance,
            )
            try:
                reports = write_reports(run, self.run_dir)
            except OSError as exc:
                # Every verdict was printed as it came and every capture is on disk; the record
                # dashboards read is worth a last try on its own (it is small, report.html not).
                why = os_error_text(exc)
                kept = _summary_alone(run, self.run_dir, why)
                raise ReportsNotWritten(
                    f"cannot write the reports of run {self.run_id}: {why} "
                    f"(captures{' and summary.json' if kept else ''} are in {self.run_dir})",
                    summary.reports_exit(run),
                ) from None
            self.progress.run_finished(run, reports["html"])
        return run

    def _interrupt(self, futures: Sequence[Future[None]]) -> None:
        """Workers see the flag between cases; the case in flight has its console waits and
        boot retries cut short and is marked not run; its session still releases the board."""
        self._stop.set()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.interrupt()
        for future in futures:
            future.cancel()

    def _board_worker(self, board: BoardConfig) -> None:
        workdir = self.run_dir / board.name
        try:
            with (
                BoardSession(board, workdir / ".board", self.request.lock_wait_s) as session,
                BundlesAhead(board, self.run_dir, self._capture_for(session)) as ahead,
            ):
                with self._lock:
                    self._sessions.add(session)
                try:
                    infra_in_a_row = 0
                    scenarios = self.request.scenarios_for(board.name)
                    for scenario, following in zip(scenarios, [*scenarios[1:], None], strict=True):
                        if self._stop.is_set():
                            return
                        self.progress.case_started(board.name, scenario.name)
                        bundle_of = ahead.take(scenario)
                        capture_of = ahead.take_capture(scenario)
                        settings = self._settings
                        if following is not None:  # made while this case boots
                            settings = replace(settings, watch=self._preparing(ahead, following))
                        case = run_case(
                            session, scenario, self.run_dir, settings, bundle_of, capture_of
                        )
                        case = _unless_interrupted(case, session)
                        self._record(case)
                        is_infra = case.verdict is Verdict.INFRA_ERROR
                        infra_in_a_row = infra_in_a_row + 1 if is_infra else 0
                        if infra_in_a_row >= board.offline_after:
                            offline = f"board offline: {case.message}"
                            self._skip_rest(board, Verdict.NOT_RUN, offline)
                            return
                finally:
                    with self._lock:
                        self._sessions.discard(session)
        except BoardBusy as exc:
            self._skip_rest(board, Verdict.NOT_RUN, str(exc))
        except HilError as exc:
            self._skip_rest(board, Verdict.INFRA_ERROR, str(exc))
        except OSError as exc:
            # The machine failed under the case (a full disk, a vanished results directory):
            # the case was not judged, and the board's remaining cases would fail the same way.
            where = "" if exc.filename is not None else f" (under {self.run_dir})"
            self._skip_rest(
                board, Verdict.INFRA_ERROR, f"this machine: {os_error_text(exc)}{where}"
            )

    def _capture_for(self, session: BoardSession) -> Callable[[Path], ConsoleGroup]:
        """How a case on ``session``'s board captures its consoles, for preparing it ahead."""
        reconnect = self._settings.reconnect
        return lambda case_dir: case_consoles(session, case_dir, reconnect)

    def _preparing(
        self, ahead: BundlesAhead, following: Scenario
    ) -> Callable[[str, str, BootProgress], None]:
        """The run's boot watch, starting on the board's first stage to make ``following``'s
        bundle: made while the board boots, not while the case opens its consoles and powers
        the board (its processes and threads would compete with those on a busy host)."""
        watch = self._settings.watch

        def progress(board: str, scenario: str, now: BootProgress) -> None:
            ahead.prepare(following)  # once: later calls find it on its way
            if watch is not None:
                watch(board, scenario, now)

        return progress

    def _record(self, case: CaseResult) -> None:
        with self._lock:
            self._cases[(case.board, case.scenario)] = case
        self.progress.case_finished(case)

    def _skip_rest(self, board: BoardConfig, verdict: Verdict, message: str) -> None:
        now = datetime.now(UTC)
        with self._lock:
            done = set(self._cases)
        for scenario in self.request.scenarios_for(board.name):
            if (board.name, scenario.name) not in done:
                case = CaseResult(board.name, scenario.name, verdict, now, 0.0, message, attempts=0)
                self._record(self._expecting(case, board))

    def _expecting(self, case: CaseResult, board: BoardConfig) -> CaseResult:
        """``case`` (one that never ran) saying the profile the run asked for, when it is not
        the board's own: ``--rerun-failed`` of a run that ran nothing reads it from there."""
        if self.request.expect_profile is None:
            return case
        return replace(
            case, expected_profile=self.request.expect_profile, board_profile=board.xen_profile
        )

    def _all_cases(self, started: datetime) -> list[CaseResult]:
        """Every board x scenario in request order; what never ran is marked not run."""
        cases = []
        for board in self.request.boards:
            for scenario in self.request.scenarios_for(board.name):
                case = self._cases.get((board.name, scenario.name))
                cases.append(
                    case
                    or self._expecting(
                        CaseResult(
                            board.name, scenario.name, Verdict.NOT_RUN, started, 0.0, "not run"
                        ),
                        board,
                    )
                )
        return cases


def _unless_interrupted(case: CaseResult, session: BoardSession) -> CaseResult:
    """A case cut short by Ctrl-C ends as an infra error (its consoles were closed under it);
    it was not judged, so it is reported as not run."""
    if session.interrupted and case.verdict is Verdict.INFRA_ERROR:
        return replace(case, verdict=Verdict.NOT_RUN, message=f"interrupted: {case.message}")
    return case


class ReportsNotWritten(InfraError):
    """The run's reports could not all be written: one line, and the exit code the run's summary
    records (a failed check still exits 1)."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _summary_alone(run: RunResult, run_dir: Path, why: str) -> bool:
    """Write just summary.json (it names no other report, and says why); whether that worked."""
    try:
        atomic_write(run_dir / summary.FILE_NAME, summary.render_summary(run, why))
    except OSError:
        return False
    return True


def _point_latest(results_dir: Path, run_id: str) -> None:
    """Make ``results_dir/latest`` a relative link to the run (replaced atomically, so a reader
    never finds it missing). Best effort: a file system without symlinks just has no link."""
    link = results_dir / LATEST
    temp = results_dir / f".{LATEST}-{run_id}"
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)
        temp.symlink_to(run_id, target_is_directory=True)
        os.replace(temp, link)


def _run_provenance(lab: Lab) -> dict[str, str]:
    digest = hashlib.sha256(lab.path.read_bytes()).hexdigest() if lab.path.exists() else "absent"
    return {
        "hil": __version__,
        "host": socket.gethostname(),
        "user": os.environ.get("USER", "unknown"),
        f"lab:{lab.path}": digest,
    }
