"""`hil console` as a person uses it: in a real pseudo-terminal (pexpect). What reaches the screen
is modelled by a cursor that carriage returns, newlines and backspaces move as a terminal's."""

from __future__ import annotations

import os
import sys
import termios
from pathlib import Path

import pexpect
import pytest

from hil.firmware import toolchain
from tests.labs import BOARDS_DIR, write_lab
from tests.tcp_console import ScriptedConsoleServer

HIL = [sys.executable, "-m", "hil"]
REPO = Path(__file__).resolve().parent.parent
QUIT = "\x1d"


def spawn(*argv: str, cwd: Path, shell_after: bool = False) -> pexpect.spawn:
    """``hil console ...`` in a fresh pseudo-terminal; with ``shell_after``, a shell runs it and
    then prints the terminal's mode and a PROMPT, as an interactive shell would after it."""
    command = " ".join([*HIL, *argv])
    if shell_after:
        args = ["-c", f"{command}; echo EXIT=$?; stty -a; printf PROMPT"]
        child = pexpect.spawn("/bin/sh", args, cwd=str(cwd), timeout=30, env=_env())
    else:
        child = pexpect.spawn(HIL[0], [*HIL[1:], *argv], cwd=str(cwd), timeout=30, env=_env())
    child.delaybeforesend = None
    return child


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm"}


def screen_rows(output: bytes) -> list[tuple[int, str]]:
    """Each row of text as a terminal would draw ``output``: (column its first character landed
    in, the text). A staircase shows up as rows starting right of column 0."""
    rows: list[tuple[int, str]] = []
    col, start, text = 0, None, ""
    for char in output.decode("utf-8", "replace"):
        if char == "\r":
            col = 0
        elif char == "\n":  # down one row, same column: what a raw terminal does
            if text:
                rows.append((start or 0, text))
            start, text = None, ""
        elif char == "\b":
            col = max(0, col - 1)
        elif char.isprintable():
            if start is None:
                start = col
            text += char
            col += 1
    if text:
        rows.append((start or 0, text))
    return rows


def read_all(child: pexpect.spawn) -> bytes:
    child.expect(pexpect.EOF)
    child.close()
    return child.before


def test_virtual_board_console_launches_the_board_and_lines_start_at_column_0(tmp_path):
    lab = write_lab(tmp_path, {"vb0": {}})
    child = spawn("console", "vb0", "--lab", str(lab), cwd=tmp_path)
    child.expect("HILPROBE end")
    seen = child.before + child.after
    child.send(QUIT)
    seen += read_all(child)
    assert child.exitstatus == 0
    rows = screen_rows(seen)
    board_rows = [r for r in rows if r[1].startswith(("NOTICE:", "(XEN)", "HILPROBE"))]
    assert len(board_rows) > 20
    assert [r for r in board_rows if r[0] != 0] == []  # no staircase
    assert "vb0:ns - Ctrl-] quits; capture in " in seen.decode()
    (capture,) = (tmp_path / "results").glob("console-*/ns.raw")
    assert b"HILPROBE end" in capture.read_bytes()
    assert (capture.parent / "secure.raw").exists()  # every console of a launched board


@pytest.fixture
def uboot(tmp_path):
    """A board hil does not launch: its console a TCP server showing a U-Boot prompt (no newline
    after it), reached as configured; power is a command that must never be run."""
    server = ScriptedConsoleServer(
        [[b"U-Boot 2026.01\r\n", b"bare newline\nline two\n", b"\x1b]0;pwned\x07=> "]]
    )
    with server:
        lab = write_lab(tmp_path, {})
        touched = tmp_path / "power-was-used"
        with lab.open("a") as f:
            f.write(
                '[[board]]\nname = "juno0"\ntype = "juno-r2"\nxen_profile = "xen-4.22"\n'
                f'consoles = {{ uart0 = "{server.url}" }}\n'
                f'power = {{ backend = "pdu-command", on = ["touch", "{touched}"], '
                f'off = ["touch", "{touched}"] }}\n'
                'deploy = { backend = "copy", dest = "." }\n'
            )
        yield lab, server, touched


def test_keys_reach_the_board_and_the_prompt_comes_back_at_column_0(tmp_path, uboot):
    lab, server, touched = uboot
    child = spawn("console", "juno0", "--lab", str(lab), cwd=tmp_path, shell_after=True)
    # The banner is hil's word that keys now go to the board; the board speaks only after it.
    child.expect(r"juno0:uart0 - Ctrl-\] quits")
    seen = child.before + child.after
    child.expect("=> ")
    seen += child.before + child.after
    assert b"U-Boot" not in seen[: seen.index(b"Ctrl-]")]
    # By the time the board's prompt shows, the terminal is raw: what is typed in reply is
    # neither echoed by the terminal nor turned into signals (the pty's two ends share a mode).
    lflag = termios.tcgetattr(child.child_fd)[3]
    assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
    child.send("version\r")
    child.send("\x03")  # Ctrl-C goes to the board, it does not stop hil
    child.send(QUIT)
    child.expect("EXIT=")
    seen += child.before
    rest = read_all(child)
    assert rest.startswith(b"0")
    assert server.received == b"version\r\x03"
    rows = screen_rows(seen + b"EXIT=" + rest)
    texts = [t for _, t in rows]
    # A board sending bare newlines still gets its lines at column 0 (the terminal adds the CR).
    assert (0, "bare newline") in rows and (0, "line two") in rows
    # The board's prompt had no newline; what the shell prints next starts on a line of its own.
    assert rows[texts.index("=> ")][0] == 0
    assert next(r for r in rows if r[1].startswith("EXIT=0"))[0] == 0
    assert next(r for r in rows if "PROMPT" in r[1]) == (0, "PROMPT")
    # The terminal is back in cooked mode with echo for the shell.
    mode = set(rest.decode().split())
    assert {"icanon", "echo", "opost", "icrnl", "isig"} <= mode
    assert b"pwned" not in seen and b"\x1b]" not in seen  # sequences from the board are dropped
    assert not touched.exists()  # attaching never power-cycles a board


def test_raw_passes_the_boards_escape_sequences_through(tmp_path, uboot):
    lab, _, _ = uboot
    child = spawn("console", "juno0", "--lab", str(lab), "--raw", cwd=tmp_path)
    child.expect("=> ")
    assert b"\x1b]0;pwned\x07" in child.before
    child.send(QUIT)
    read_all(child)
    assert child.exitstatus == 0


def test_a_console_that_goes_away_ends_the_session_with_exit_3(tmp_path):
    server = ScriptedConsoleServer([[b"booting\r\n", 0.2]], hold_last=False)
    with server:
        lab = write_lab(tmp_path, {})
        with lab.open("a") as f:
            f.write(
                '[[board]]\nname = "juno0"\ntype = "juno-r2"\nxen_profile = "xen-4.22"\n'
                f'consoles = {{ uart0 = "{server.url}" }}\n'
                'power = { backend = "pdu-command", on = ["true"], off = ["true"] }\n'
                'deploy = { backend = "copy", dest = "." }\n'
            )
        child = spawn("console", "juno0", "--lab", str(lab), cwd=tmp_path)
        child.expect("booting")
        server.stop()  # the terminal server is gone: reconnecting fails
        out = (child.after + read_all(child)).decode()
    assert child.exitstatus == 3
    assert "booting" in out
    assert "hil: console 'uart0'" in out and "capture in" in out


def test_unknown_console_is_one_line(tmp_path, capsys):
    from hil.cli import main

    lab = write_lab(tmp_path, {"vb0": {}})
    assert main(["console", "vb0", "--lab", str(lab), "--console", "uart9"]) == 2
    err = capsys.readouterr().err
    assert err == "hil: error: board 'vb0' has no console 'uart9' (consoles: ns, secure)\n"


@pytest.mark.qemu
def test_qemu_board_console_launches_qemu(tmp_path):
    if toolchain.missing():
        pytest.skip("needs qemu-system-aarch64 + cross gcc + TF-A source: scripts/setup-system.sh")
    lab = tmp_path / "lab.toml"
    lab.write_text(
        f'boards_dir = "{BOARDS_DIR}"\nresults_dir = "{tmp_path / "results"}"\n[[board]]\n'
        'name = "qemu0"\ntype = "qemu-virt"\nxen_profile = "none"\n'
        'power = { backend = "qemu" }\ndeploy = { backend = "qemu" }\n'
    )
    child = spawn("console", "qemu0", "--lab", str(lab), "--scenario", "zero-sps", cwd=tmp_path)
    child.expect("HILPROBE end", timeout=120)  # a cold cache builds TF-A first
    seen = child.before + child.after
    child.send(QUIT)
    read_all(child)
    assert child.exitstatus == 0
    rows = [r for r in screen_rows(seen) if r[1].startswith(("NOTICE:", "HILPROBE"))]
    assert rows and all(col == 0 for col, _ in rows)
