"""The lab: ``lab.toml`` (which boards, how to reach, power and deploy each) and the board types
in ``boards/<type>.toml`` (console defaults, boot stage markers and timeouts, deploy method),
loaded and validated strictly: any mistake is one ConfigError line naming file, board and field."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hil.backend import BackendSpec, Registry
from hil.boards import LAUNCHED, launched_kind
from hil.config import ConfigTable, display_path, load_toml
from hil.console import ReconnectPolicy
from hil.deploy import DEPLOY, Deployer
from hil.errors import ConfigError, UsageError
from hil.guest import GUESTS, LINUX, PROBE
from hil.power import POWER, PowerBackend
from hil.results import validate_name
from hil.xen.kconfig import check_assignment, read_kconfig
from hil.xen.messages import BY_KEY
from hil.xen.oracle import XenOptions

XEN_MESSAGE_PREFIX = "xen:"  # a marker naming a hil.xen.messages entry instead of a regex
NO_HYPERVISOR = "none"  # the Xen profile for boards that boot the probe without Xen
CONSOLE_SCHEMES = ("socket", "rfc2217", "loop")
# Consecutive infra errors after which a board's remaining cases of a run are not tried (LAVA's
# health check: a board that does not boot is not retried for every scenario of a nightly).
OFFLINE_AFTER = 2
COORDINATOR_ENV = "LG_COORDINATOR"  # labgrid-client's own variable for the coordinator address
# Back-end options that are durations in seconds, by the names every back-end gives them
# (timeout, stop_timeout, off_time, stage_delay, ...): finite and at most a week, checked at load
# even though the back-end itself is only built when a session starts.
DURATION_KEY = re.compile(r"(?:^|_)(?:timeout|time|delay|wait)$")


def profile_label(profile: str) -> str:
    """A Xen profile as a person reads it: ``none`` is firmware booting the probe without Xen."""
    return "firmware only (no Xen)" if profile == NO_HYPERVISOR else profile


@dataclass(frozen=True)
class Stage:
    """One boot stage: reached when ``marker`` appears, complete when ``done`` does (if set)."""

    name: str
    marker: re.Pattern[str]
    done: re.Pattern[str] | None
    timeout_s: float
    # Where its markers are looked for. In a board type None means the normal-world console
    # (``BoardType.normal_console``); a board's stages always name a console it has.
    console: str | None
    xen: bool  # printed by Xen: a board booting without a hypervisor skips it
    shows: str = "its marker"  # the marker in words, for messages ("'NOTICE:  BL2: '")
    done_shows: str = "its end marker"  # ``done`` in words
    # Printed by that dom0 guest only (hil.guest.GUESTS): a board booting another skips it.
    # None: every guest's boot has it.
    guest: str | None = None


@dataclass(frozen=True)
class ConsoleRoles:
    """Which of a board's consoles carries what. ``normal``: the normal world's UART, where TF-A
    boots and Xen and dom0 (the probe) print; the only console evidence is taken from (boot
    boundaries, Xen's lines, the probe's lines). ``secure``: the secure world's (the SPMC, its
    SPs); None when the board has no such console. Text on any console but ``normal`` never
    starts a boot, hides evidence or supplies it."""

    normal: str
    secure: str | None = None


@dataclass(frozen=True)
class BoardType:
    name: str
    description: str
    stages: tuple[Stage, ...]
    consoles: Mapping[str, str]  # default console name -> URL
    power: BackendSpec | None  # default power back-end, if the type implies one
    deploy: BackendSpec | None  # the type's deploy method
    source: Path
    # Console names from ``normal_console`` / ``secure_console`` (a one-console type: that one
    # is normal); None in a type that names no console (its boards name theirs).
    roles: ConsoleRoles | None = None


@dataclass(frozen=True)
class BoardConfig:
    name: str
    type: BoardType
    consoles: Mapping[str, str]
    power: BackendSpec
    deploy: BackendSpec
    xen_profile: str
    tags: tuple[str, ...]
    timeouts: Mapping[str, float]  # per-stage overrides of the type's timeouts
    default: bool
    place: str | None  # labgrid place, when the lab is distributed
    coordinator: str | None  # HOST:PORT of the place's labgrid coordinator (None without place)
    # With a place: console name -> the place's serial resource carrying it (None: the place's
    # only serial resource). Empty without a place, where ``consoles`` holds the URLs.
    console_resources: Mapping[str, str | None]
    xen_image: Path | None
    xen_src: Path | None
    source: Path
    # Extra Kconfig lines: what hil builds xen_src with; for a prebuilt xen_image, checked
    # against the .config it embeds, and only without one what it was built with.
    xen_kconfig: tuple[str, ...] = ()
    xen_dom0_vcpus: int = 1
    # SCP firmware a Juno's FIP carries (Arm's, not redistributable: the lab has it).
    scp_bl2: Path | None = None
    # The board's consoles by role (see ConsoleRoles); resolved at load from its type.
    roles: ConsoleRoles = ConsoleRoles("")
    # ``expect = "recorded:DIR"``: judged against that recording (hil.diff.recording) instead
    # of the oracle; xen_profile may then be left out (a Xen fork has none).
    recording: Path | None = None
    # What runs as dom0 (hil.guest.GUESTS), and for the Linux guest the lab's own kernel
    # directory (hil.guest.linux.prepare_guest's ``kernel_dir``; None: Debian's, fetched by
    # scripts/setup-system.sh).
    guest: str = PROBE
    dom0_kernel: Path | None = None

    def xen_options(self, kconfig: Mapping[str, str] | None = None) -> XenOptions:
        """The options this board boots Xen with and the oracle assumes, for a Xen built with
        ``kconfig`` (default: the board's ``xen_kconfig`` lines)."""
        built = read_kconfig(self.xen_kconfig) if kconfig is None else kconfig
        return XenOptions.of_build(built, self.xen_dom0_vcpus)

    offline_after: int = OFFLINE_AFTER  # see OFFLINE_AFTER; the lab's value unless set here

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages this board goes through, with its timeout overrides applied, each watching
        the console its type names (default: the normal-world one; a board with one console
        prints everything there). Stages of another dom0 guest than the board's are left out."""
        skip_xen = self.xen_profile == NO_HYPERVISOR
        names = self.console_names
        return tuple(
            replace(
                s,
                timeout_s=self.timeouts.get(s.name, s.timeout_s),
                console=s.console if s.console in names else self.roles.normal,
            )
            for s in self.type.stages
            if not (skip_xen and s.xen) and s.guest in (None, self.guest)
        )

    @property
    def console_names(self) -> tuple[str, ...]:
        """The board's consoles: a place's mapped resources, else the configured URLs' names."""
        return tuple(self.console_resources if self.place else self.consoles)

    def make_power(self) -> PowerBackend:
        return POWER.create(self.power)

    def make_deployer(self) -> Deployer:
        return DEPLOY.create(self.deploy)


@dataclass(frozen=True)
class Lab:
    path: Path
    boards: Mapping[str, BoardConfig]  # in file order
    board_types: Mapping[str, BoardType]
    results_dir: Path
    boot_attempts: int  # boots tried per check before the board is declared broken
    reconnect: ReconnectPolicy

    def board(self, name: str) -> BoardConfig:
        if name not in self.boards:
            raise UsageError(
                f"{display_path(self.path)}: no board '{name}' (boards: {', '.join(self.boards)})"
            )
        return self.boards[name]

    def select(self, names: Sequence[str] = ()) -> list[BoardConfig]:
        """The named boards (each once, however often named), else those marked
        ``default = true``, else all."""
        if names:
            return [self.board(n) for n in dict.fromkeys(names)]
        defaults = [b for b in self.boards.values() if b.default]
        return defaults or list(self.boards.values())


def check_console_url(table: ConfigTable, key: str, url: str) -> None:
    """A URL pyserial's serial_for_url opens: a tty path, socket://, rfc2217:// or loop://."""
    if url.startswith("/"):
        return
    parts = urlsplit(url)
    if parts.scheme not in CONSOLE_SCHEMES:
        raise table.error(
            key,
            f"{url!r} is not a console (use a tty path, socket://HOST:PORT, "
            "rfc2217://HOST:PORT or loop://)",
        )
    if parts.scheme == "loop":
        return
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname:
        raise table.error(key, f"{url!r} has no host")
    if port is None:
        raise table.error(key, f"{url!r} has no port")
    if port < 0:
        raise table.error(key, f"{url!r} has a bad port")


def _console_name(table: ConfigTable, name: str) -> None:
    """A console name becomes the name of its capture files (``<name>.raw``): no path tricks."""
    try:
        validate_name("console", name)
    except ConfigError as exc:
        raise table.error(name, str(exc)) from None


def _consoles(table: ConfigTable, key: str, default: Mapping[str, str]) -> dict[str, str]:
    consoles = table.table(key, default)
    for name in consoles.data:
        _console_name(consoles, name)
        check_console_url(consoles, name, consoles.get(name, str))
    if not consoles.data:
        raise table.error(key, "no console")
    return dict(consoles.data)


def _backend(
    table: ConfigTable, key: str, registry: Registry[Any], board: str, default: BackendSpec | None
) -> BackendSpec:
    if key not in table.data and default is not None:
        return BackendSpec(
            default.source, f"board '{board}'", default.prefix, default.data, board, default.kind
        )
    sub = table.table(key)
    kind = sub.get("backend", str)
    if kind not in registry and kind not in LAUNCHED:
        known = sorted({*registry.names(), *LAUNCHED})
        raise sub.error(
            "backend", f"unknown {registry.what} back-end {kind!r} (known: {', '.join(known)})"
        )
    for option in sub.data:
        if DURATION_KEY.search(option):
            sub.seconds(option, allow_zero=True)
    spec = BackendSpec(sub.source, sub.where, sub.prefix, sub.data, board, kind)
    if kind in registry:
        registry.check(spec)
    return spec


def is_virtual_launch(spec: BackendSpec) -> bool:
    """A virtual board with no control address given: hil runs it, like an FVP it launches."""
    return launched_kind(spec.kind, spec.data) == "virtual"


def _check_virtual_launch(spec: BackendSpec, profiles: Collection[str]) -> None:
    """The options of a virtual board hil launches, checked now rather than when the board
    process starts (where a mistake would look like a board that does not boot)."""
    from hil.boards.virtual import LAUNCH_OPTIONS
    from hil.sim.boot_script import CONSOLES, STAGES
    from hil.sim.faults import FaultSet

    spec.only("backend", *LAUNCH_OPTIONS)
    spec.get("console_timestamps", bool, False)
    xen = spec.get("xen", str, None)
    if xen is not None and xen not in profiles:
        raise spec.error("xen", f"unknown Xen profile {xen!r} (known: {', '.join(profiles)})")
    try:
        FaultSet.parse(spec.get("faults", dict, {}), STAGES, CONSOLES)
    except UsageError as exc:
        raise spec.error("faults", str(exc)) from None
    _check_xen_options(spec.table("xen_options", {}))


def _output_sources(board: BoardConfig) -> list[tuple[tuple[str, str], str, str, str]]:
    """``((kind, key), field, as given, what)`` for each place a board's output is read from
    that no other board may share: its labgrid place, or each console it is wired to. A board
    hil launches gets ports of its own at each launch, so it shares nothing."""
    if board.place is not None:
        key = f"{board.coordinator or ''}/{board.place}"
        return [(("place", key), "place", board.place, "place")]
    if launched_kind(board.power.kind, board.power.data) is not None:
        return []
    sources = []
    for name, url in board.consoles.items():
        # A device under two names (/dev/serial/by-id/... -> /dev/ttyUSB0) is one device.
        key = url if "://" in url else os.path.realpath(url)
        sources.append((("console", key), f"consoles.{name}", url, f"console '{name}'"))
    return sources


def _check_launcher(board: BoardConfig) -> None:
    """A board hil launches (QEMU, FVP, a virtual board): its platform's launcher parses the
    power table and only stores what it read, so building one now and dropping it finds a
    mistake at load, where a session would have reported it as a board that does not start."""
    kind = launched_kind(board.power.kind, board.power.data)
    if kind is None:
        return
    try:
        module = importlib.import_module(LAUNCHED[kind][0])
    except ImportError:
        return  # an optional platform missing here: the session says so when it launches
    module.launcher(board, Path(board.name))


def _check_xen_options(table: ConfigTable) -> None:
    """``xen_options``: fields of hil.xen.oracle.XenOptions, each of its type and range."""
    table.only("tee_cmdline", "vm_to_vm", "debug", "smccc_version", "dom0_vcpus")
    tee = table.get("tee_cmdline", str, "")
    # It becomes one word of Xen's command line.
    if tee and not re.fullmatch(r"[A-Za-z0-9_.,:=+-]+", tee):
        raise table.error("tee_cmdline", f"{tee!r} is not one Xen command-line word")
    table.get("vm_to_vm", bool, False)
    table.get("debug", bool, False)
    smccc = table.get("smccc_version", int, 0x10002)
    if not 0x10000 <= smccc <= 0x1FFFF:
        raise table.error("smccc_version", f"expected an SMCCC 1.x version, got {smccc:#x}")
    vcpus = table.get("dom0_vcpus", int, 1)
    if not 1 <= vcpus <= MAX_DOM0_VCPUS:
        raise table.error("dom0_vcpus", f"must be 1 to {MAX_DOM0_VCPUS}, got {vcpus}")


def _marker(table: ConfigTable, key: str, required: bool) -> re.Pattern[str] | None:
    """A marker: a regex, or ``xen:<message key>``, or a list of either (any of them)."""
    raw = table.data.get(key)
    if raw is None:
        if required:
            raise table.error(key, "missing")
        return None
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise table.error(key, f"expected a regex or a list of regexes, got {raw!r}")
    patterns = []
    for item in items:
        if item.startswith(XEN_MESSAGE_PREFIX):
            name = item.removeprefix(XEN_MESSAGE_PREFIX)
            if name not in BY_KEY:
                raise table.error(key, f"no Xen message {name!r} in hil.xen.messages")
            # Named groups would clash when alternatives are joined; the marker needs none.
            patterns.append(re.sub(r"\(\?P<\w+>", "(?:", BY_KEY[name].regex.pattern))
        else:
            try:
                re.compile(item)
            except re.error as exc:
                raise table.error(key, f"bad regex {item!r}: {exc}") from exc
            patterns.append(item)
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE)


def marker_text(raw: str | list[str]) -> str:
    """A marker as a person reads it in a message: what was written, and for a Xen message the
    start of its text rather than the regex hil builds from it."""
    items = [raw] if isinstance(raw, str) else raw
    words = []
    for item in items:
        if item.startswith(XEN_MESSAGE_PREFIX):
            template = BY_KEY[item.removeprefix(XEN_MESSAGE_PREFIX)].template
            words.append(f"Xen's '{template.split('{')[0].strip()} ...' line")
        else:
            words.append(repr(item))
    return " or ".join(words)


def load_board_type(path: Path) -> BoardType:
    top = ConfigTable(path, "", "", load_toml(path))
    top.only(
        "name",
        "description",
        "consoles",
        "normal_console",
        "secure_console",
        "power",
        "deploy",
        "stages",
    )
    name = top.get("name", str)
    if name != path.stem:
        raise top.error("name", f"{name!r} differs from the file name {path.stem!r}")
    consoles = _consoles(top, "consoles", {}) if "consoles" in top.data else {}
    roles = _type_roles(top, consoles)
    stages_raw = top.get("stages", list)
    stages: list[Stage] = []
    for i, raw in enumerate(stages_raw):
        if not isinstance(raw, dict):
            raise top.error(f"stages[{i}]", "expected a table")
        st = ConfigTable(path, "", f"stages[{i}].", raw)
        st.only("name", "marker", "done", "timeout", "console", "xen", "guest")
        stage_name = st.get("name", str)
        if any(s.name == stage_name for s in stages):
            raise st.error("name", f"duplicate stage {stage_name!r}")
        console = st.get("console", str, None)
        if console is not None and consoles and console not in consoles:
            raise st.error("console", f"no console {console!r} in this board type")
        timeout = st.seconds("timeout")
        marker = _marker(st, "marker", required=True)
        assert marker is not None
        guest = st.get("guest", str, None)
        if guest is not None and guest not in GUESTS:
            raise st.error("guest", f"unknown guest {guest!r} (known: {', '.join(GUESTS)})")
        stages.append(
            Stage(
                stage_name,
                marker,
                _marker(st, "done", False),
                timeout,
                console,
                st.get("xen", bool, False),
                marker_text(st.data["marker"]),
                marker_text(st.data["done"]) if "done" in st.data else Stage.done_shows,
                guest,
            )
        )
    if not stages:
        raise top.error("stages", "no stage")
    specs = {}
    for key, registry in (("power", POWER), ("deploy", DEPLOY)):
        specs[key] = _backend(top, key, registry, "", None) if key in top.data else None
    return BoardType(
        name,
        top.get("description", str, ""),
        tuple(stages),
        consoles,
        specs["power"],
        specs["deploy"],
        path,
        roles,
    )


def _type_roles(top: ConfigTable, consoles: Mapping[str, str]) -> ConsoleRoles | None:
    """The type's ``normal_console`` / ``secure_console``: required with several consoles (the
    type must say where evidence comes from), the only console by default."""
    roles = {}
    for key in ("normal_console", "secure_console"):
        name = top.get(key, str, None)
        if name is not None and consoles and name not in consoles:
            raise top.error(key, f"no console {name!r} in this board type")
        roles[key] = name
    normal, secure = roles["normal_console"], roles["secure_console"]
    if normal is None and len(consoles) == 1:
        normal = next(iter(consoles))
    if normal is None:
        if consoles:
            raise top.error(
                "normal_console",
                "missing: which of the consoles carries TF-A's boot, Xen and dom0?",
            )
        return None
    if secure == normal:
        raise top.error("secure_console", f"{secure!r} is also the normal-world console")
    return ConsoleRoles(normal, secure)


def _board_roles(t: ConfigTable, btype: BoardType, names: Sequence[str]) -> ConsoleRoles:
    """A board's console roles: its type's, for the consoles the board has. A board with a
    single console has everything on it."""
    roles = btype.roles
    if roles is not None and roles.normal in names:
        return ConsoleRoles(roles.normal, roles.secure if roles.secure in names else None)
    if len(names) == 1:
        return ConsoleRoles(names[0])
    wanted = f"console {roles.normal!r}" if roles else "normal_console"
    raise t.error(
        "consoles",
        f"no {wanted} (board type '{btype.name}' carries TF-A's boot, Xen and dom0 on it)",
    )


def load_board_types(directory: Path) -> dict[str, BoardType]:
    return {p.stem: load_board_type(p) for p in sorted(directory.glob("*.toml"))}


BOARD_KEYS = (
    "name",
    "type",
    "xen_profile",
    "consoles",
    "power",
    "deploy",
    "tags",
    "timeouts",
    "default",
    "place",
    "coordinator",
    "xen_image",
    "xen_src",
    "xen_kconfig",
    "xen_dom0_vcpus",
    "offline_after",
    "scp_bl2",
    "expect",
    "guest",
    "dom0_kernel",
)
MAX_DOM0_VCPUS = 128  # MAX_VIRT_CPUS of arm64 Xen with GICv3


def _address(table: ConfigTable, key: str, address: str) -> str:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise table.error(key, f"expected HOST:PORT, got {address!r}")
    return address


def _place(
    t: ConfigTable, btype: BoardType, lab_coordinator: str | None
) -> tuple[str | None, str | None, dict[str, str | None]]:
    """(place, coordinator, console -> serial resource) of a board; a board with a place reaches
    its consoles through the place, so its ``consoles`` name resources instead of URLs."""
    place = t.get("place", str, None)
    if place is None:
        if "coordinator" in t.data:
            raise t.error("coordinator", "only meaningful with a labgrid 'place'")
        return None, None, {}
    if "coordinator" in t.data:
        coordinator = _address(t, "coordinator", t.get("coordinator", str))
    elif lab_coordinator is not None:
        coordinator = lab_coordinator
    elif os.environ.get(COORDINATOR_ENV):
        coordinator = os.environ[COORDINATOR_ENV]
    else:
        raise t.error(
            "coordinator",
            f"missing for place {place!r} (set it here, lab-wide, or in ${COORDINATOR_ENV})",
        )
    if "consoles" not in t.data:
        if not btype.consoles:
            raise t.error("consoles", f"board type '{btype.name}' names no console to map")
        return place, coordinator, {next(iter(btype.consoles)): None}
    consoles = t.table("consoles")
    if not consoles.data:
        raise t.error("consoles", "no console")
    for name in consoles.data:
        _console_name(consoles, name)
    return place, coordinator, {name: consoles.get(name, str) for name in consoles.data}


def _board(
    raw: Any,
    index: int,
    top: ConfigTable,
    types: Mapping[str, BoardType],
    profiles: Collection[str],
    default_profile: str | None,
    lab_coordinator: str | None,
    lab_offline_after: int = OFFLINE_AFTER,
) -> BoardConfig:
    if not isinstance(raw, dict):
        raise top.error(f"board[{index}]", "expected a table")
    numbered = ConfigTable(top.source, f"board #{index + 1}", "", raw)
    name = numbered.get("name", str)
    try:
        # The name becomes a directory of the results and a lock file: no path tricks.
        validate_name("board", name)
    except ConfigError as exc:
        raise numbered.error("name", str(exc)) from None
    t = ConfigTable(top.source, f"board '{name}'", "", raw)
    t.only(*BOARD_KEYS)
    type_name = t.get("type", str)
    if type_name not in types:
        raise t.error("type", f"unknown board type {type_name!r} (known: {', '.join(types)})")
    btype = types[type_name]
    recording = _recording(t)
    profile = t.get("xen_profile", str, default_profile)
    if profile is None and recording is None:
        raise t.error("xen_profile", "missing (and no lab-wide xen_profile)")
    if profile is not None and profile not in profiles:
        raise t.error(
            "xen_profile", f"unknown Xen profile {profile!r} (known: {', '.join(profiles)})"
        )
    if profile is None:
        if type_name == "virtual":
            raise t.error("xen_profile", "missing: a virtual board models a profile")
        profile = f"recorded:{display_path(recording)}"  # what its reports are judged against
    guest = t.get("guest", str, PROBE)
    if guest not in GUESTS:
        raise t.error("guest", f"unknown guest {guest!r} (known: {', '.join(GUESTS)})")
    timeouts = t.table("timeouts", {})
    stage_names = [s.name for s in btype.stages if s.guest in (None, guest)]
    for stage in timeouts.data:
        if stage not in stage_names:
            owner = next((s.guest for s in btype.stages if s.name == stage), None)
            whose = f"only the {owner} guest's" if owner else "no"
            raise timeouts.error(
                stage,
                f"board type '{type_name}' has {whose} stage {stage!r} "
                f"(stages: {', '.join(stage_names)})",
            )
        timeouts.seconds(stage)
    backends = {}
    for key, registry, fallback in (
        ("power", POWER, btype.power),
        ("deploy", DEPLOY, btype.deploy),
    ):
        if key not in raw and fallback is None:
            raise t.error(key, f"missing (board type '{type_name}' has no default)")
        backends[key] = _backend(t, key, registry, name, fallback)
    backends["deploy"] = _launched_deploy(t, raw, backends["power"], backends["deploy"])
    if is_virtual_launch(backends["power"]):
        _check_virtual_launch(backends["power"], profiles)
    place, coordinator, console_resources = _place(t, btype, lab_coordinator)
    xen_image, xen_src, xen_kconfig, dom0_vcpus = _xen(t)
    has_xen = xen_image is not None or xen_src is not None
    _check_guest(t, btype, guest, backends["power"], has_xen, recording)
    consoles = dict(btype.consoles) if place else _consoles(t, "consoles", btype.consoles)
    roles = _board_roles(t, btype, list(console_resources if place else consoles))
    return BoardConfig(
        name=name,
        type=btype,
        consoles=consoles,
        power=backends["power"],
        deploy=backends["deploy"],
        xen_profile=profile,
        tags=t.strings("tags"),
        timeouts={k: timeouts.get(k, float) for k in timeouts.data},
        default=t.get("default", bool, False),
        place=place,
        coordinator=coordinator,
        console_resources=console_resources,
        xen_image=xen_image,
        xen_src=xen_src,
        source=top.source,
        xen_kconfig=xen_kconfig,
        xen_dom0_vcpus=dom0_vcpus,
        offline_after=_tries(t, "offline_after", lab_offline_after),
        scp_bl2=t.optional_path("scp_bl2"),
        roles=roles,
        recording=recording,
        guest=guest,
        dom0_kernel=_dom0_kernel(t, guest),
    )


def _check_guest(
    t: ConfigTable,
    btype: BoardType,
    guest: str,
    power: BackendSpec,
    has_xen: bool,
    recording: Path | None,
) -> None:
    """A guest other than the probe needs a board type with stages for it, a board hil
    launches as QEMU (it loads the kernel and initramfs beside Xen) and a real Xen to be dom0
    of; a recording holds the probe's answers, which that guest does not give."""
    if guest == PROBE:
        return
    if not any(s.guest == guest for s in btype.stages):
        raise t.error("guest", f"board type '{btype.name}' has no stages for the {guest} guest")
    if launched_kind(power.kind, power.data) != "qemu":
        raise t.error("guest", f'the {guest} guest needs power = {{ backend = "qemu" }}')
    if not has_xen:
        raise t.error("guest", f"the {guest} guest runs as Xen's dom0: set xen_src or xen_image")
    if recording is not None:
        why = f"a board judged by a recording (expect) boots the probe, not {guest}"
        raise t.error("guest", why)


def _dom0_kernel(t: ConfigTable, guest: str) -> Path | None:
    """``dom0_kernel``: the lab's own Linux kernel directory (relative to the lab file), with
    its ``vmlinuz`` and ``kernel.json`` checked now rather than when the first case boots."""
    from hil.guest.linux import LinuxSourceError, kernel_info

    directory = t.optional_path("dom0_kernel")
    if directory is None:
        return None
    if guest != LINUX:
        raise t.error("dom0_kernel", f'only with guest = "{LINUX}" (this board boots the {guest})')
    try:
        kernel_info(directory)
    except LinuxSourceError as exc:
        raise t.error("dom0_kernel", str(exc)) from None
    return directory


def _launched_deploy(
    t: ConfigTable, raw: Mapping[str, Any], power: BackendSpec, deploy: BackendSpec
) -> BackendSpec:
    """A board hil launches deploys to the process it launches: its deploy table, if given,
    names the same kind; left out, it is that kind (not the board type's default)."""
    launched = launched_kind(power.kind, power.data)
    if launched is None:
        if deploy.kind in LAUNCHED and deploy.kind not in DEPLOY:
            raise t.error(
                "deploy.backend", f"deploy back-end {deploy.kind!r} needs power back-end "
                f"{deploy.kind!r} (hil launches such a board and deploys to it)"
            )  # fmt: skip
        return deploy
    if "deploy" not in raw:
        return BackendSpec(power.source, power.where, "deploy.", {}, power.board, launched)
    if deploy.kind != launched:
        raise t.error(
            "deploy.backend",
            f"a board hil launches ({launched!r}) deploys to it: use "
            f'deploy = {{ backend = "{launched}" }} or leave deploy out, not {deploy.kind!r}',
        )
    return deploy


def _recording(t: ConfigTable) -> Path | None:
    """The recording ``expect = "recorded:DIR"`` names (relative to the lab file), checked."""
    from hil.diff.recording import RECORDED, load_recording

    expect = t.get("expect", str, None)
    if expect is None:
        return None
    if not expect.startswith(RECORDED):
        raise t.error("expect", f"expected '{RECORDED}DIR', got {expect!r}")
    directory = (t.source.parent / expect.removeprefix(RECORDED)).resolve()
    try:
        load_recording(directory)
    except ConfigError as exc:
        raise t.error("expect", str(exc)) from None
    return directory


def _xen(t: ConfigTable) -> tuple[Path | None, Path | None, tuple[str, ...], int]:
    """(xen_image, xen_src, xen_kconfig, xen_dom0_vcpus) of a board, checked as far as they can
    be without building: a source that is not Xen's is a config error, not a failed build."""
    from hil.firmware.xen import XenSource, XenSourceError

    xen_image, xen_src = t.optional_path("xen_image"), t.optional_path("xen_src")
    if xen_image is not None and xen_src is not None:
        raise t.error("xen_src", "give either 'xen_src' (hil builds it) or 'xen_image', not both")
    if xen_src is not None:
        try:
            XenSource.of(xen_src)
        except XenSourceError as exc:
            raise t.error("xen_src", str(exc)) from None
    kconfig = t.strings("xen_kconfig")
    for i, line in enumerate(kconfig):
        try:
            check_assignment(line)
        except ValueError as exc:
            raise t.error(f"xen_kconfig[{i}]", str(exc)) from None
    vcpus = t.get("xen_dom0_vcpus", int, 1)
    if not 1 <= vcpus <= MAX_DOM0_VCPUS:
        raise t.error("xen_dom0_vcpus", f"must be 1 to {MAX_DOM0_VCPUS}, got {vcpus}")
    return xen_image, xen_src, kconfig, vcpus


# More boots or reconnects than this per case is a typo: a stalled board would be retried for days.
MAX_ATTEMPTS = 100


def _tries(table: ConfigTable, key: str, default: int) -> int:
    """A count of tries: 1 to MAX_ATTEMPTS."""
    value = table.get(key, int, default)
    if not 1 <= value <= MAX_ATTEMPTS:
        raise table.error(key, f"must be 1 to {MAX_ATTEMPTS}, got {value}")
    return value


def _known_profiles() -> tuple[str, ...]:
    from hil.xen.oracle import PROFILES

    return tuple(PROFILES)


def load_lab(path: Path, profiles: Collection[str] | None = None) -> Lab:
    """Load and validate ``path``; ``profiles`` are the accepted Xen profile names (default: the
    oracle's)."""
    top = ConfigTable(path, "", "", load_toml(path))
    top.only(
        "boards_dir",
        "results_dir",
        "xen_profile",
        "boot_attempts",
        "reconnect_attempts",
        "coordinator",
        "offline_after",
        "board",
    )
    boards_dir = (path.parent / top.get("boards_dir", str, "boards")).resolve()
    if not boards_dir.is_dir():
        raise top.error("boards_dir", f"{display_path(boards_dir)} is not a directory")
    types = load_board_types(boards_dir)
    known = tuple(profiles) if profiles is not None else _known_profiles()
    default_profile = top.get("xen_profile", str, None)
    if default_profile is not None and default_profile not in known:
        raise top.error(
            "xen_profile", f"unknown Xen profile {default_profile!r} (known: {', '.join(known)})"
        )
    coordinator = top.get("coordinator", str, None)
    if coordinator is not None:
        _address(top, "coordinator", coordinator)
    offline_after = _tries(top, "offline_after", OFFLINE_AFTER)
    boards: dict[str, BoardConfig] = {}
    # Where each board's output is read (a console endpoint or a labgrid place) -> who reads it.
    readers: dict[tuple[str, str], tuple[str, str]] = {}
    for i, raw in enumerate(top.get("board", list)):
        board = _board(raw, i, top, types, known, default_profile, coordinator, offline_after)
        _check_launcher(board)
        table = ConfigTable(path, f"board '{board.name}'", "", raw)
        if board.name in boards:
            raise table.error("name", "duplicate board name")
        for source, field, shown, what in _output_sources(board):
            other = readers.setdefault(source, (board.name, what))
            if other[0] != board.name:
                raise table.error(
                    field,
                    f"{shown!r} is also board '{other[0]}''s {other[1]}: one board's capture "
                    "would hold the other's boots",
                )
        boards[board.name] = board
    if not boards:
        raise top.error("board", "no board")
    attempts = _tries(top, "boot_attempts", 3)
    reconnects = _tries(top, "reconnect_attempts", ReconnectPolicy().attempts)
    return Lab(
        path=path,
        boards=boards,
        board_types=types,
        results_dir=(path.parent / top.get("results_dir", str, "results")).resolve(),
        boot_attempts=attempts,
        reconnect=ReconnectPolicy(attempts=reconnects),
    )
