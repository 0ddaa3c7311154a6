"""pytest plugin: a lab's own test suites get boards, consoles, Xen logs and the oracle as
fixtures::

    pytest --lab lab.toml --board virtual0 --board qemu0 -n 2 --dist loadgroup examples/lab-tests/

A test asking for ``board`` (or a fixture built on it) runs once per selected board (default: the
lab's default boards). Each board is opened once per pytest process (locked, launched when hil
runs it) and shared by its tests. Under pytest-xdist use ``--dist loadgroup``: each board's tests
form one group, so one worker owns a board and boards are spread over workers.

Fixtures: ``hil_lab`` (the Lab), ``board`` (a hil.session.BoardSession), ``console`` (the board's
consoles, open and captured for this test; a board hil launches, such as QEMU, exists only while
powered, so it starts powered off and the test powers it on or resets it), ``xen_log``
(``xen_log("scenario")`` boots a scenario and returns a :class:`BootedScenario`, or raises
:class:`NotJudged` when hil could not judge the boot), ``oracle``
(``oracle("scenario")`` is the Expectation for the board's Xen profile).

A bad lab file or an unknown ``--board`` is one line (``ERROR: hil: ...``) before anything runs.
A failing test that used ``xen_log`` or ``console`` carries, in its report, where the captures
are and the last lines of each console."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.boards.builds import board_xen_options
from hil.boot import RetryPolicy
from hil.case import CaseSettings, observe, parse_captures, run_case
from hil.compare import Observation
from hil.config import display_path
from hil.console import ConsoleGroup
from hil.errors import HilError
from hil.evidence import EvidenceIncomplete, Window, last_boot, panic_patterns
from hil.lab import Lab, load_lab
from hil.report.tail import TAIL_LINES, file_tail
from hil.results import CaseResult, Verdict
from hil.scenario import SCENARIO_DIR, Scenario, load_scenarios
from hil.session import BoardSession
from hil.xen.log import Event
from hil.xen.oracle import Expectation, expect


@dataclass(frozen=True)
class BootedScenario:
    scenario: Scenario
    case: CaseResult  # verdict against the board's profile, diff, stages, artifacts
    # The judged boot's lines on the normal console (never an earlier attempt's), then every
    # line of the other consoles.
    events: list[Event]
    observation: Observation  # Xen's FF-A lines and the probe's answers in the judged boot


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hil hardware-in-the-loop")
    group.addoption("--lab", default=None, help="hil lab file (default: $HIL_LAB or lab.toml)")
    group.addoption("--board", action="append", default=[], help="hil board (repeatable)")
    group.addoption("--scenarios-dir", default=None, help="hil scenario directory")


def pytest_configure(config: pytest.Config) -> None:
    # A lab or board named on the command line is checked before collection: a typo is one line
    # (pytest's "ERROR: ..."), not a collection error with a traceback per test module.
    if config.getoption("lab") or config.getoption("board"):
        _board_names(config)


def _board_names(config: pytest.Config) -> list[str]:
    try:
        return [b.name for b in _load_lab(config).select(config.getoption("board"))]
    except HilError as exc:
        raise pytest.UsageError(f"hil: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Asking for hil_board_name (through our `board` fixture), not for "board": a test module's
    # own fixture named `board` shadows ours and must not be parametrized over the lab.
    if "hil_board_name" not in metafunc.fixturenames:
        return
    names = _board_names(metafunc.config)
    metafunc.parametrize(
        "hil_board_name",
        [pytest.param(n, id=n, marks=pytest.mark.xdist_group(f"hil-board-{n}")) for n in names],
        scope="session",
    )


def _load_lab(config: pytest.Config) -> Lab:
    cached: Lab | None = getattr(config, "_hil_lab", None)
    if cached is None:
        path = config.getoption("lab") or os.environ.get("HIL_LAB", "lab.toml")
        cached = load_lab(Path(path))
        config._hil_lab = cached  # type: ignore[attr-defined]
    return cached


@pytest.fixture(scope="session")
def hil_lab(pytestconfig: pytest.Config) -> Lab:
    return _load_lab(pytestconfig)


class _BoardPool:
    """Boards opened by this pytest process, each once, all closed when the session ends."""

    def __init__(self, lab: Lab, directory: Path) -> None:
        self.lab, self.directory = lab, directory
        self.stack = ExitStack()
        self.sessions: dict[str, BoardSession] = {}

    def get(self, name: str) -> BoardSession:
        if name not in self.sessions:
            session = BoardSession(self.lab.board(name), self.directory / name)
            self.sessions[name] = self.stack.enter_context(session)
        return self.sessions[name]


@pytest.fixture(scope="session")
def _hil_boards(hil_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_BoardPool]:
    pool = _BoardPool(hil_lab, tmp_path_factory.mktemp("hil-boards"))
    with pool.stack:
        yield pool


@pytest.fixture(scope="session")
def board(hil_board_name: str, _hil_boards: _BoardPool) -> BoardSession:
    return _hil_boards.get(hil_board_name)


@dataclass(frozen=True)
class _Capture:
    """What a test captured, for its failure report."""

    what: str  # "vb0 / one-non-secure", "vb0 consoles"
    directory: Path
    logs: dict[str, Path]  # console name -> its timestamped log


_CAPTURES = pytest.StashKey[list[_Capture]]()


def _record(request: pytest.FixtureRequest, capture: _Capture) -> None:
    request.node.stash.setdefault(_CAPTURES, []).append(capture)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    if report.failed:
        for capture in item.stash.get(_CAPTURES, []):
            report.sections.append((f"hil {capture.what}", _describe(capture)))
    return report


def _describe(capture: _Capture) -> str:
    """The capture's directory, then the last lines of each console, made inert."""
    out = [f"capture: {capture.directory}"]
    for name, log in capture.logs.items():
        out.append(f"last {TAIL_LINES} lines of {name} ({log.name}):")
        out += [f"  {line}" for line in file_tail(log)] or ["  (no output)"]
    return "\n".join(out)


@pytest.fixture
def console(
    board: BoardSession, hil_lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ConsoleGroup]:
    directory = tmp_path / "console"
    # A board hil launches (QEMU) has consoles only while it runs, and they go away when it is
    # reset: it starts off, its consoles connecting when the test powers it on.
    needs_power = board.launched is not None and board.launched.consoles_need_power
    if needs_power:
        board.power.power_off()
    # Each console watches the panics its world can print (hil.evidence.panic_patterns).
    panics = panic_patterns(board.board.roles, board.consoles)
    group = ConsoleGroup(
        board.consoles,
        directory,
        reconnect=hil_lab.reconnect,
        connect_now=not needs_power,
        panic_patterns=panics,
    )
    logs = {name: console.log_path for name, console in group.consoles.items()}
    _record(request, _Capture(f"{board.board.name} consoles", directory, logs))
    with group:
        yield group


@pytest.fixture
def scenarios(pytestconfig: pytest.Config) -> Callable[[str], Scenario]:
    directory = Path(pytestconfig.getoption("scenarios_dir") or SCENARIO_DIR)
    return lambda name: load_scenarios(directory, [name])[0]


@pytest.fixture
def oracle(board: BoardSession, scenarios: Callable[[str], Scenario]) -> Callable[..., Expectation]:
    config = board.board
    # The options the board boots Xen with (dom0's vCPUs, debug, VM to VM), as a case's bundle
    # records them: the defaults would expect another Xen than the one booted.
    options = board_xen_options(config)

    def expectation(name: str, profile: str | None = None) -> Expectation:
        scenario = scenarios(name)
        if profile is None and config.recording is not None:
            pytest.fail(
                f"hil: board '{config.name}' is judged against recorded:"
                f"{display_path(config.recording)}, not an oracle profile: name one, "
                "oracle(scenario, profile='xen-4.22')",
                pytrace=False,
            )
        profile = profile or config.xen_profile
        return expect(profile, scenario.spmc_config(), scenario.probe_plan(), options)

    return expectation


@pytest.fixture
def xen_log(
    board: BoardSession,
    hil_lab: Lab,
    scenarios: Callable[[str], Scenario],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Callable[[str], BootedScenario]:
    settings = CaseSettings(
        expect_profile=None,
        boot_retry=RetryPolicy(attempts=hil_lab.boot_attempts),
        reconnect=hil_lab.reconnect,
        provenance={},
    )

    def boot(name: str) -> BootedScenario:
        scenario = scenarios(name)
        case = run_case(board, scenario, tmp_path, settings)
        directory = tmp_path / board.board.name / scenario.name
        logs = {name: tmp_path / rel for name, rel in case.console_logs().items()}
        what = f"{board.board.name} / {scenario.name}"
        _record(request, _Capture(what, directory, logs))
        if case.verdict in (Verdict.INFRA_ERROR, Verdict.NOT_RUN):
            # Nothing to judge (a stall, damaged or missing evidence): whatever the consoles
            # hold would make a test blame the firmware for the lab.
            raise NotJudged(f"hil {what}: not judged: {case.message}")
        return BootedScenario(scenario, case, *_judged(directory, board))

    return boot


class NotJudged(HilError):
    """``xen_log`` booted a scenario whose evidence cannot be judged (hil's infra error)."""


def _judged(directory: Path, board: BoardSession) -> tuple[list[Event], Observation]:
    """The events and observation of the boot the case judged (``evidence.json``: the last
    attempt's, up to the probe's end line), never an earlier attempt's or what came after.
    A case that ended in a panic has no such window: its last boot, as far as it went."""
    normal = board.board.roles.normal
    others = [e for e in parse_captures(directory, board.consoles) if e.console != normal]
    try:
        window = Window.load(directory / "evidence.json")
    except EvidenceIncomplete:
        events = last_boot(parse_captures(directory, [normal]))
        return events + others, observe(events, normal, whole=False, guest=board.board.guest)
    events = window.read(directory)
    # A Linux-guest board's observation holds the driver's view (Observation.linux).
    return events + others, observe(events, normal, guest=board.board.guest)
