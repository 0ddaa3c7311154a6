from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.cli import main
from hil.config import ConfigTable
from hil.errors import ConfigError, ExitCode
from hil.lab import check_console_url, load_board_type, load_lab
from hil.xen.messages import message

REPO = Path(__file__).resolve().parent.parent
PROFILES = ("xen-4.21", "xen-4.22", "none")
BOARD = 'name = "b0"\ntype = "qemu-virt"\ndeploy = {backend = "copy", dest = "."}\n'
PDU = 'power = {backend = "pdu-command", on = ["pdu", "on"], off = ["pdu", "off"]}\n'
VIRTUAL = 'xen_profile = "xen-4.22"\n[[board]]\nname = "v0"\ntype = "virtual"\n'


@pytest.fixture
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "boards", tmp_path / "boards")
    monkeypatch.chdir(tmp_path)  # messages name files as the user would: relative
    return tmp_path


def _load(lab_dir: Path, text: str):  # type: ignore[no-untyped-def]
    (lab_dir / "lab.toml").write_text(text)
    return load_lab(lab_dir / "lab.toml", PROFILES)


def _error(lab_dir: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(lab_dir, text)
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == ExitCode.USAGE
    return message


def test_default_lab_has_one_default_virtual_board() -> None:
    lab = load_lab(REPO / "lab.toml", PROFILES)
    (board,) = lab.select()
    assert (board.name, board.type.name, board.xen_profile, board.default) == (
        "virtual0",
        "virtual",
        "xen-4.22",
        True,
    )
    assert (board.power.kind, board.deploy.kind) == ("virtual", "virtual")
    assert set(board.consoles) == {"ns", "secure"}


def test_a_board_named_twice_is_selected_once() -> None:
    """pytest --board juno0 --board juno0 must not parametrize two sessions of one board."""
    lab = load_lab(REPO / "lab.toml", PROFILES)
    assert [b.name for b in lab.select(["virtual0", "virtual0"])] == ["virtual0"]


def test_every_shipped_board_type_loads_with_the_full_stage_list() -> None:
    for path in sorted((REPO / "boards").glob("*.toml")):
        btype = load_board_type(path)
        probe = [s.name for s in btype.stages if s.guest in (None, "probe")]
        assert probe == ["bl1", "bl2", "bl31", "spmc", "xen", "ffa", "probe"], path.name


@pytest.mark.parametrize(
    ("stage", "line"),
    [
        ("bl1", "NOTICE:  Booting Trusted Firmware"),
        ("bl31", "NOTICE:  BL31: v2.12.1(release):v2.12.1"),
        ("spmc", "I/TC: OP-TEE version: 4.5.0 (gcc version 12.2.0) #1"),
        ("spmc", "NOTICE: Initialising hafnium"),
        ("xen", "(XEN) " + message("xen_version").render(version="4.22", rest="(x@y) (gcc)")),
        ("ffa", "(XEN) " + message("mediator_version").render(version="1.2")),
    ],
)
def test_stage_markers_match_real_console_lines(stage: str, line: str) -> None:
    btype = load_board_type(REPO / "boards" / "fvp-base-revc.toml")
    marker = next(s.marker for s in btype.stages if s.name == stage)
    assert marker.search(f"junk\r\n{line}\r\nmore\r\n")


@pytest.mark.parametrize("key", ["tee_using", "no_firmware", "vm_to_vm_only"])
def test_ffa_init_ends_on_any_of_its_outcomes(key: str) -> None:
    btype = load_board_type(REPO / "boards" / "juno-r2.toml")
    done = next(s.done for s in btype.stages if s.name == "ffa")
    assert done is not None
    text = message(key).render(name="FF-A") if key == "tee_using" else message(key).render()
    assert done.search(f"(XEN) {text}\r\n")
    assert not done.search("(XEN) ARM FF-A Mediator version 1.2\r\n")


def test_board_overrides_and_no_hypervisor(lab_dir: Path) -> None:
    lab = _load(
        lab_dir,
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{probe = 99}}\n'
        'tags = ["juno"]\nplace = "p1"\ncoordinator = "127.0.0.1:20408"\n',
    )
    board = lab.board("b0")
    assert [s.name for s in board.stages] == ["bl1", "bl2", "bl31", "spmc", "probe"]
    assert board.stages[-1].timeout_s == 99
    assert (board.tags, board.place, board.xen_profile) == (("juno",), "p1", "none")
    assert lab.select() == [board]  # no default board: all


BOARD_KEYS = (
    "name, type, xen_profile, consoles, power, deploy, tags, timeouts, default, place, "
    "coordinator, xen_image, xen_src, xen_kconfig, xen_dom0_vcpus, offline_after, scp_bl2, expect, "
    "guest, dom0_kernel"
)
CASES = [
    (
        "colour = 1\n",
        "lab.toml: field 'colour': unknown key (known: boards_dir, results_dir, "
        "xen_profile, boot_attempts, reconnect_attempts, coordinator, offline_after, board)",
    ),
    ('xen_profile = "xen-4.22"\n', "lab.toml: field 'board': missing"),
    ("[[board]]\ntype = 'qemu-virt'\n", "lab.toml: board #1: field 'name': missing"),
    ('[[board]]\nname = "b0"\n', "lab.toml: board 'b0': field 'type': missing"),
    ("[[board]]\nname = 7\n", "lab.toml: board #1: field 'name': expected a string, got 7"),
    (
        f"[[board]]\n{BOARD}{PDU}colour = 1\n",
        f"lab.toml: board 'b0': field 'colour': unknown key (known: {BOARD_KEYS})",
    ),
    ("offline_after = 0\n", "lab.toml: field 'offline_after': must be 1 to 100, got 0"),
    (
        f'[[board]]\n{BOARD}{PDU}xen_profile = "xen-4.22"\noffline_after = 0\n',
        "lab.toml: board 'b0': field 'offline_after': must be 1 to 100, got 0",
    ),
    (
        f'[[board]]\n{BOARD}{PDU}xen_profile = "xen-4.22"\ndefault = "yes"\n',
        "lab.toml: board 'b0': field 'default': expected true or false, got 'yes'",
    ),
    (
        f"[[board]]\n{BOARD}{PDU}",
        "lab.toml: board 'b0': field 'xen_profile': missing (and no lab-wide xen_profile)",
    ),
    (
        f'xen_profile = "xen-9"\n[[board]]\n{BOARD}{PDU}',
        "lab.toml: field 'xen_profile': unknown Xen profile 'xen-9' "
        "(known: xen-4.21, xen-4.22, none)",
    ),
    (
        f'[[board]]\n{BOARD}{PDU}xen_profile = "xen-9"\n',
        "lab.toml: board 'b0': field 'xen_profile': unknown Xen profile 'xen-9' "
        "(known: xen-4.21, xen-4.22, none)",
    ),
    (
        'xen_profile = "none"\n[[board]]\nname = "b0"\ntype = "nope"\n',
        "lab.toml: board 'b0': field 'type': unknown board type 'nope' "
        "(known: fvp-base-revc, juno-r2, qemu-virt, virtual)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{uart0 = "socket://host"}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.uart0': 'socket://host' has no port",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{u = "socket://h:99999"}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.u': 'socket://h:99999' has a bad port",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{u = "rfc2217://:4000"}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.u': 'rfc2217://:4000' has no host",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{u = "telnet://h:23"}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.u': 'telnet://h:23' is not a console (use a tty "
        "path, socket://HOST:PORT, rfc2217://HOST:PORT or loop://)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{u = 5}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.u': expected a string, got 5",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles': no console",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}',
        "lab.toml: board 'b0': field 'power': missing (board type 'qemu-virt' has no default)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}power = {{backend = "ipmi"}}\n',
        "lab.toml: board 'b0': field 'power.backend': unknown power back-end 'ipmi' "
        "(known: emulator, fvp, pdu-command, pyocd, qemu, virtual)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}power = {{on = ["x"]}}\n',
        "lab.toml: board 'b0': field 'power.backend': missing",
    ),
    (
        # hil launches QEMU and deploys to it: a copy deployer would never be booted.
        f'xen_profile = "none"\n[[board]]\n{BOARD}power = {{backend = "qemu"}}\n',
        "lab.toml: board 'b0': field 'deploy.backend': a board hil launches ('qemu') deploys to "
        "it: use deploy = { backend = \"qemu\" } or leave deploy out, not 'copy'",
    ),
    (
        'xen_profile = "none"\n[[board]]\nname = "b0"\ntype = "qemu-virt"\n'
        f'deploy = {{backend = "qemu"}}\n{PDU}',
        "lab.toml: board 'b0': field 'deploy.backend': deploy back-end 'qemu' needs power "
        "back-end 'qemu' (hil launches such a board and deploys to it)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xne = 5}}\n',
        "lab.toml: board 'b0': field 'timeouts.xne': board type 'qemu-virt' has no stage 'xne' "
        "(stages: bl1, bl2, bl31, spmc, xen, ffa, probe)",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xen = 0}}\n',
        "lab.toml: board 'b0': field 'timeouts.xen': must be positive, got 0",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}[[board]]\n{BOARD}{PDU}',
        "lab.toml: board 'b0': field 'name': duplicate board name",
    ),
    (
        f'xen_profile = "none"\nboot_attempts = 0\n[[board]]\n{BOARD}{PDU}',
        "lab.toml: field 'boot_attempts': must be 1 to 100, got 0",
    ),
    ('boards_dir = "nowhere"\n', "lab.toml: field 'boards_dir': nowhere is not a directory"),
    # Durations: nan and inf are valid TOML, a week is the longest wait anything may ask for.
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xen = nan}}\n',
        "lab.toml: board 'b0': field 'timeouts.xen': expected a finite number, got nan",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xen = inf}}\n',
        "lab.toml: board 'b0': field 'timeouts.xen': expected a finite number, got inf",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xen = {"9" * 400}}}\n',
        "lab.toml: board 'b0': field 'timeouts.xen': expected a finite number, got inf",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}timeouts = {{xen = 1e9}}\n',
        "lab.toml: board 'b0': field 'timeouts.xen': must be at most 604800 s (a week), got 1e+09",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}'
        'power = {backend = "pdu-command", on = ["a"], off = ["b"], timeout = 1e12}\n',
        "lab.toml: board 'b0': field 'power.timeout': must be at most 604800 s (a week), got 1e+12",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}'
        'power = {backend = "pdu-command", on = ["a"], off = ["b"], off_time = -inf}\n',
        "lab.toml: board 'b0': field 'power.off_time': expected a finite number, got -inf",
    ),
    (
        f'xen_profile = "none"\nboot_attempts = 1000000000\n[[board]]\n{BOARD}{PDU}',
        "lab.toml: field 'boot_attempts': must be 1 to 100, got 1000000000",
    ),
    # A back-end's own options are checked at load too, not when a session builds it.
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}'
        'power = {backend = "pdu-command", on = ["a"]}\n',
        "lab.toml: board 'b0': field 'power.off': missing",
    ),
    (
        f'xen_profile = "none"\n[[board]]\nname = "b0"\ntype = "qemu-virt"\n{PDU}'
        'deploy = {backend = "command", argv = "cp {bundle} /mnt"}\n',
        "lab.toml: board 'b0': field 'deploy.argv': expected a list, got 'cp {bundle} /mnt'",
    ),
    (
        'xen_profile = "none"\n[[board]]\nname = "q0"\ntype = "qemu-virt"\n'
        'power = {backend = "qemu", smp = "two"}\n',
        "lab.toml: board 'q0': field 'power.smp': expected an integer, got 'two'",
    ),
    # Names that become file names of every run.
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD}consoles = {{"../x" = "loop://"}}\n{PDU}',
        "lab.toml: board 'b0': field 'consoles.../x': console name '../x' is not a safe file "
        "name: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    ),
    (
        f'xen_profile = "none"\ncoordinator = "c:1"\n[[board]]\n{BOARD}{PDU}place = "p"\n'
        'consoles = {"a/b" = "uart0"}\n',
        "lab.toml: board 'b0': field 'consoles.a/b': console name 'a/b' is not a safe file "
        "name: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
    ),
    (
        f'xen_profile = "none"\n[[board]]\n{BOARD.replace("b0", "Summary.json")}{PDU}',
        "lab.toml: board #1: field 'name': board name 'Summary.json' is taken by a report "
        "file of every run",
    ),
    # A virtual board hil launches: its options are checked at load, not when it starts.
    (
        f'{VIRTUAL}power = {{backend = "virtual", faults = {{bogus = {{}}}}}}\n',
        "lab.toml: board 'v0': field 'power.faults': unknown fault 'bogus' (known: stall, "
        "garbage, disconnect, reboot, reboot_loop, slow, burst, text, corrupt, drop)",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", faults = {{stall = {{stage = "xne"}}}}}}\n',
        "lab.toml: board 'v0': field 'power.faults': fault stall: stage 'xne' is not one of "
        "bl1, bl2, bl31, spmc, xen, ffa, dom0, probe",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", faults = {{burst = {{stage = "xen", '
        "size = 99999999999}}}\n",
        "lab.toml: board 'v0': field 'power.faults': fault burst: size must be an integer 0 to "
        "67108864, got 99999999999",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", faults = {{slow = {{ms_per_byte = nan}}}}}}\n',
        "lab.toml: board 'v0': field 'power.faults': fault slow: ms_per_byte must be a number "
        "0 to 10000, got nan",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", faults = {{slow = {{ms_per_byte = {"9" * 400}'
        "}}}\n",
        f"lab.toml: board 'v0': field 'power.faults': fault slow: ms_per_byte must be a number "
        f"0 to 10000, got {'9' * 400}",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", xen = "xen-9.99"}}\n',
        "lab.toml: board 'v0': field 'power.xen': unknown Xen profile 'xen-9.99' "
        "(known: xen-4.21, xen-4.22, none)",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", xen_options = {{vcpus = 2}}}}\n',
        "lab.toml: board 'v0': field 'power.xen_options.vcpus': unknown key "
        "(known: tee_cmdline, vm_to_vm, debug, smccc_version, dom0_vcpus)",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", xen_options = {{dom0_vcpus = 0}}}}\n',
        "lab.toml: board 'v0': field 'power.xen_options.dom0_vcpus': must be 1 to 128, got 0",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", xen_options = {{debug = "yes"}}}}\n',
        "lab.toml: board 'v0': field 'power.xen_options.debug': expected true or false, got 'yes'",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", xen_options = {{tee_cmdline = "ffa x=1"}}}}\n',
        "lab.toml: board 'v0': field 'power.xen_options.tee_cmdline': 'ffa x=1' is not one Xen "
        "command-line word",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", stage_delay = inf}}\n',
        "lab.toml: board 'v0': field 'power.stage_delay': expected a finite number, got inf",
    ),
    (
        f'{VIRTUAL}power = {{backend = "virtual", colour = "red"}}\n',
        "lab.toml: board 'v0': field 'power.colour': unknown key "
        "(known: backend, stage_delay, faults, console_timestamps, xen_options, xen)",
    ),
    (
        "a = " + "[" * 5000 + "]" * 5000 + "\n",
        "lab.toml: not valid TOML: arrays or tables nested too deeply",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bad_lab_gives_one_exact_line(lab_dir: Path, text: str, expected: str) -> None:
    assert _error(lab_dir, text) == expected


def test_a_board_hil_launches_deploys_to_itself_without_a_deploy_table(lab_dir: Path) -> None:
    text = 'xen_profile = "none"\n[[board]]\nname = "q0"\ntype = "qemu-virt"\n'
    board = _load(lab_dir, text + 'power = {backend = "qemu"}\n').board("q0")
    # Not the board type's default (copy): the launched QEMU is where the bundle goes.
    assert (board.power.kind, board.deploy.kind) == ("qemu", "qemu")


def test_toml_syntax_error_names_the_file(lab_dir: Path) -> None:
    assert _error(lab_dir, "[[board]\n").startswith("lab.toml: not valid TOML: ")


def test_a_file_ending_inside_a_string_names_its_last_line(lab_dir: Path) -> None:
    # tomllib itself says only "at end of document" there.
    error = _error(lab_dir, "[[board]]\nname = 'b0\n")
    assert error.endswith("(at end of document, line 3)"), error


def test_a_fifo_is_refused_not_waited_on(lab_dir: Path) -> None:
    """A FIFO where the lab file should be: open() would block until a writer came."""
    os.mkfifo(lab_dir / "lab.toml")
    with pytest.raises(ConfigError, match=r"^lab.toml: cannot read: not a regular file$"):
        load_lab(lab_dir / "lab.toml", PROFILES)
    (lab_dir / "lab.toml").unlink()
    os.mkfifo(lab_dir / "boards" / "fifo.toml")
    with pytest.raises(ConfigError, match=r"^boards/fifo.toml: cannot read: not a regular file$"):
        _load(lab_dir, f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}')


def test_a_config_file_is_read_up_to_a_bound(lab_dir: Path) -> None:
    """The wrong file given as the lab (a capture, an image) is refused, not read whole."""
    (lab_dir / "lab.toml").write_bytes(b"#" * (5 << 20))
    with pytest.raises(ConfigError, match=r"^lab.toml: cannot read: more than 4 MiB$"):
        load_lab(lab_dir / "lab.toml", PROFILES)


def test_missing_lab_file(lab_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nolab.toml: cannot read: No such file"):
        load_lab(lab_dir / "nolab.toml", PROFILES)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            'name = "s"\nmarker = "(unclosed"\ntimeout = 1',
            "boards/bad.toml: field 'stages[0].marker': bad regex '(unclosed': missing ), "
            "unterminated subpattern at position 0",
        ),
        (
            'name = "s"\nmarker = "xen:nope"\ntimeout = 1',
            "boards/bad.toml: field 'stages[0].marker': no Xen message 'nope' in hil.xen.messages",
        ),
        ('name = "s"\ntimeout = 1', "boards/bad.toml: field 'stages[0].marker': missing"),
        (
            'name = "s"\nmarker = "x"\ntimeout = -1',
            "boards/bad.toml: field 'stages[0].timeout': must be positive, got -1",
        ),
        (
            'name = "s"\nmarker = "x"\ntimeout = 1\nwhen = 2',
            "boards/bad.toml: field 'stages[0].when': unknown key "
            "(known: name, marker, done, timeout, console, xen, guest)",
        ),
        (
            'name = "s"\nmarker = "x"\ntimeout = 1\nconsole = "uart9"',
            "boards/bad.toml: field 'stages[0].console': no console 'uart9' in this board type",
        ),
    ],
)
def test_bad_board_type_gives_one_exact_line(lab_dir: Path, stage: str, expected: str) -> None:
    (lab_dir / "boards" / "bad.toml").write_text(
        f'name = "bad"\n[consoles]\nuart0 = "loop://"\n[[stages]]\n{stage}\n'
    )
    assert _error(lab_dir, f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}') == expected


def test_board_type_name_must_match_its_file(lab_dir: Path) -> None:
    (lab_dir / "boards" / "bad.toml").write_text('name = "good"\n')
    assert _error(lab_dir, "") == (
        "boards/bad.toml: field 'name': 'good' differs from the file name 'bad'"
    )


def _table() -> ConfigTable:
    return ConfigTable(Path("lab.toml"), "board 'b'", "consoles.", {})


@given(
    st.sampled_from(["socket", "rfc2217"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.integers(0, 65535),
)
def test_any_host_and_port_is_a_console(scheme: str, host: str, port: int) -> None:
    check_console_url(_table(), "u", f"{scheme}://{host}:{port}")


@given(st.integers(65536, 10**9))
def test_ports_beyond_16_bits_are_refused(port: int) -> None:
    with pytest.raises(ConfigError, match=r"has a bad port$"):
        check_console_url(_table(), "u", f"socket://h:{port}")


PLACED = f'[[board]]\n{BOARD}{PDU}xen_profile = "none"\nplace = "juno-07"\n'


def test_place_coordinator_board_over_lab_over_environment(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:3")
    assert _load(lab_dir, PLACED).board("b0").coordinator == "127.0.0.1:3"
    lab_wide = f'coordinator = "127.0.0.1:2"\n{PLACED}'
    assert _load(lab_dir, lab_wide).board("b0").coordinator == "127.0.0.1:2"
    own = f'{lab_wide}coordinator = "127.0.0.1:1"\n'
    assert _load(lab_dir, own).board("b0").coordinator == "127.0.0.1:1"


def test_place_without_any_coordinator_is_one_line(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    assert _error(lab_dir, PLACED) == (
        "lab.toml: board 'b0': field 'coordinator': missing for place 'juno-07' "
        "(set it here, lab-wide, or in $LG_COORDINATOR)"
    )


def test_place_consoles_name_serial_resources(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:3")
    # No consoles: the place's only serial resource is the board type's first console.
    board = _load(lab_dir, PLACED).board("b0")
    assert dict(board.console_resources) == {"ns": None}
    mapped = _load(lab_dir, f'{PLACED}consoles = {{ ns = "uart0", secure = "uart1" }}\n')
    assert dict(mapped.board("b0").console_resources) == {"ns": "uart0", "secure": "uart1"}
    assert (
        dict(
            _load(lab_dir, f"[[board]]\n{BOARD}{PDU}xen_profile = 'none'\n")
            .board("b0")
            .console_resources
        )
        == {}
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            f'{PLACED}coordinator = "nowhere"\n',
            "lab.toml: board 'b0': field 'coordinator': expected HOST:PORT, got 'nowhere'",
        ),
        (
            f'coordinator = "h:70000"\n{PLACED}',
            "lab.toml: field 'coordinator': expected HOST:PORT, got 'h:70000'",
        ),
        (
            f'[[board]]\n{BOARD}{PDU}xen_profile = "none"\ncoordinator = "h:1"\n',
            "lab.toml: board 'b0': field 'coordinator': only meaningful with a labgrid 'place'",
        ),
        (
            f"{PLACED}consoles = {{ ns = 1 }}\n",
            "lab.toml: board 'b0': field 'consoles.ns': expected a string, got 1",
        ),
        (f"{PLACED}consoles = {{}}\n", "lab.toml: board 'b0': field 'consoles': no console"),
    ],
)
def test_bad_place_settings_give_one_exact_line(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch, extra: str, expected: str
) -> None:
    monkeypatch.setenv("LG_COORDINATOR", "127.0.0.1:3")
    assert _error(lab_dir, extra) == expected


def test_every_shipped_board_type_says_which_console_carries_the_evidence() -> None:
    for path in sorted((REPO / "boards").glob("*.toml")):
        btype = load_board_type(path)
        assert btype.roles is not None, path.name
        assert btype.roles.normal in btype.consoles and btype.roles.secure in btype.consoles
        # Only the SPMC's stage is looked for elsewhere than on the normal-world console.
        assert {s.name for s in btype.stages if s.console not in (None, btype.roles.normal)} == {
            "spmc"
        }, path.name


def test_a_boards_stages_watch_its_normal_console(lab_dir: Path) -> None:
    board = _load(lab_dir, f"{VIRTUAL}").board("v0")
    assert (board.roles.normal, board.roles.secure) == ("ns", "secure")
    assert {s.name: s.console for s in board.stages} == {
        "bl1": "ns",
        "bl2": "ns",
        "bl31": "ns",
        "spmc": "secure",
        "xen": "ns",
        "ffa": "ns",
        "probe": "ns",
    }
    # One console carries everything; it is the normal world's.
    single = _load(
        lab_dir, f'xen_profile = "none"\n[[board]]\n{BOARD}{PDU}consoles = {{u = "loop://"}}\n'
    )
    board = single.board("b0")
    assert (board.roles.normal, board.roles.secure) == ("u", None)
    assert {s.console for s in board.stages} == {"u"}


@pytest.mark.parametrize(
    ("types", "board", "expected"),
    [
        (
            'name = "two"\n[consoles]\na = "loop://"\nb = "loop://"\n',
            "",
            "boards/two.toml: field 'normal_console': missing: which of the consoles carries "
            "TF-A's boot, Xen and dom0?",
        ),
        (
            'name = "two"\nnormal_console = "c"\n[consoles]\na = "loop://"\nb = "loop://"\n',
            "",
            "boards/two.toml: field 'normal_console': no console 'c' in this board type",
        ),
        (
            'name = "two"\nnormal_console = "a"\nsecure_console = "a"\n[consoles]\na = "loop://"\n',
            "",
            "boards/two.toml: field 'secure_console': 'a' is also the normal-world console",
        ),
        (
            'name = "two"\nnormal_console = "a"\n[consoles]\na = "loop://"\nb = "loop://"\n',
            'consoles = {x = "loop://", y = "loop://"}\n',
            "lab.toml: board 'b0': field 'consoles': no console 'a' (board type 'two' carries "
            "TF-A's boot, Xen and dom0 on it)",
        ),
    ],
)
def test_console_roles_are_checked_at_load(
    lab_dir: Path, types: str, board: str, expected: str
) -> None:
    stage = '[[stages]]\nname = "bl1"\nmarker = "x"\ntimeout = 1\n'
    (lab_dir / "boards" / "two.toml").write_text(types + stage)
    lab = f'xen_profile = "none"\n[[board]]\nname = "b0"\ntype = "two"\n{PDU}{board}'
    lab += 'deploy = {backend = "copy", dest = "."}\n'
    assert _error(lab_dir, lab) == expected


WIRED = (
    '[[board]]\nname = "{name}"\ntype = "qemu-virt"\nxen_profile = "none"\n{PDU}'
    'deploy = {{backend = "copy", dest = "."}}\nconsoles = {{ ns = "{ns}", secure = "{secure}" }}\n'
)


@pytest.mark.parametrize("alias", [False, True])
def test_two_boards_reading_one_console_are_refused_before_any_board_is_touched(
    lab_dir: Path, capsys: pytest.CaptureFixture[str], alias: bool
) -> None:
    # b1's table was copied from b0's and its normal console left as it was: each board's
    # capture would hold the other's boots, and b1 could pass on b0's.
    (lab_dir / "ttyUSB0").touch()
    (lab_dir / "by-id").mkdir()
    (lab_dir / "by-id" / "usb-b0-if00").symlink_to(lab_dir / "ttyUSB0")
    second = str(lab_dir / ("by-id/usb-b0-if00" if alias else "ttyUSB0"))
    text = WIRED.format(name="b0", PDU=PDU, ns=lab_dir / "ttyUSB0", secure="socket://h:2")
    text += WIRED.format(name="b1", PDU=PDU, ns=second, secure="socket://h:4")
    (lab_dir / "lab.toml").write_text(text)
    assert main(["run", "--lab", "lab.toml", "--board", "b1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hil: error: lab.toml: board 'b1': field 'consoles.ns': '{second}' is also board "
        "'b0''s console 'ns': one board's capture would hold the other's boots\n"
    )
    assert not (lab_dir / "results").exists()


# -- the dom0 guest (guest = "linux", dom0_kernel) ---------------------------------------------

QEMU_XEN = (
    '[[board]]\nname = "q0"\ntype = "qemu-virt"\nxen_profile = "xen-4.22"\n'
    'power = {backend = "qemu"}\nxen_image = "xen.bin"\n'
)


def _kernel_dir(root: Path, info: str | None = '{"release": "7.3", "package": "mine"}') -> Path:
    kdir = root / "kernel"
    kdir.mkdir()
    (kdir / "vmlinuz").write_bytes(b"image")
    if info is not None:
        (kdir / "kernel.json").write_text(info)
    return kdir


def test_a_linux_board_boots_the_linux_stage_instead_of_the_probe(lab_dir: Path) -> None:
    _kernel_dir(lab_dir)
    text = f'{QEMU_XEN}guest = "linux"\ndom0_kernel = "kernel"\ntimeouts = {{linux = 120}}\n'
    board = _load(lab_dir, text).board("q0")
    assert (board.guest, board.dom0_kernel) == ("linux", (lab_dir / "kernel").resolve())
    stages = {s.name: s for s in board.stages}
    assert "probe" not in stages and stages["linux"].timeout_s == 120
    done = stages["linux"].done
    assert done is not None and done.search("HILLINUX end devices=2")
    # The default guest is still the probe, without the Linux stage.
    probe_board = _load(lab_dir, QEMU_XEN).board("q0")
    assert probe_board.guest == "probe" and probe_board.dom0_kernel is None
    assert [s.name for s in probe_board.stages][-1] == "probe"
    assert "linux" not in [s.name for s in probe_board.stages]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('guest = "windows"\n', "field 'guest': unknown guest 'windows' (known: probe, linux)"),
        (
            'guest = "linux"\ntype = "fvp-base-revc"\n',
            "field 'guest': board type 'fvp-base-revc' has no stages for the linux guest",
        ),
        (
            'guest = "linux"\npower = {backend = "pdu-command", on = ["on"], off = ["off"]}\n'
            'deploy = {backend = "copy", dest = "."}\n',
            "field 'guest': the linux guest needs power = { backend = \"qemu\" }",
        ),
        (
            'guest = "linux"\nxen_image = false\n',
            "field 'guest': the linux guest runs as Xen's dom0: set xen_src or xen_image",
        ),
        ('dom0_kernel = "kernel"\n', "field 'dom0_kernel': only with guest = \"linux\""),
        (
            'guest = "linux"\ndom0_kernel = "nowhere"\n',
            "field 'dom0_kernel': {lab}/nowhere is not a directory",
        ),
        (
            'guest = "linux"\ntimeouts = {probe = 10}\n',
            "field 'timeouts.probe': board type 'qemu-virt' has only the probe guest's stage "
            "'probe' (stages: bl1, bl2, bl31, spmc, xen, ffa, linux)",
        ),
    ],
)
def test_a_bad_guest_is_one_line_naming_the_board_and_field(
    lab_dir: Path, extra: str, problem: str
) -> None:
    _kernel_dir(lab_dir)
    lines = dict(line.split(" = ", 1) for line in (QEMU_XEN + extra).splitlines()[1:])
    lines = {k: v for k, v in lines.items() if v != "false"}  # "xen_image = false": left out
    text = "[[board]]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items())
    message = _error(lab_dir, text)
    assert message.startswith("lab.toml: board 'q0': ")
    assert problem.replace("{lab}", str(lab_dir.resolve())) in message


def test_a_lab_kernel_without_kernel_json_is_refused_at_load(lab_dir: Path) -> None:
    _kernel_dir(lab_dir, info=None)
    message = _error(lab_dir, f'{QEMU_XEN}guest = "linux"\ndom0_kernel = "kernel"\n')
    assert "field 'dom0_kernel':" in message and "kernel.json: cannot read" in message
