"""The README's examples are the real outputs of the commands they show: each `$ command` block is
run as a reader would run it (a shell in a copy of the repository root with the default
`lab.toml`, `hil` on PATH as after `. .venv/bin/activate`) and its output must match what the
README shows, line for line. What legitimately changes between runs is matched loosely and only
that: decimals (times), `<run-id>`, runs of spaces (column padding), and a line that is just
`...` (lines the README leaves out). `$ echo $?` after a command is that command's exit code."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hil.firmware import toolchain

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# Blocks with a command that needs what this test does not have, by a string of that command.
ELSEWHERE = {
    "real-xen.toml": "builds four real Xens (tests/firmware/test_real_xen.py runs those boards)",
    "fork.toml": "a lab with a Xen fork the reader has",
    "hil diff": "builds real Xens on both sides (tests/test_diff.py)",
    "--board fvp0": "an FVP lab; shown abridged from a run on tests/fvp_standin.py",
}
# The repository root as a reader's checkout has it; lab.toml is copied so results stay here.
LINKED = ("boards", "firmware", "tests", "examples", "pyproject.toml")


@dataclass
class Command:
    line: str
    shown: list[str] = field(default_factory=list)
    exit_code: int | None = None  # from a following `$ echo $?`


@dataclass
class Block:
    first_line: int  # in README.md, for the test id
    commands: list[Command]

    @property
    def name(self) -> str:
        return f"L{self.first_line}:{self.commands[0].line.split(' --')[0][:40]}"


def readme_blocks() -> list[Block]:
    """Every indented code block that starts with a `$ ` line."""
    blocks: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if not line.startswith("    ") and (line.strip() or current is None):
            current = None
            continue
        text = line[4:]  # a blank line inside a block is part of it
        if text.startswith("$ "):
            command = text[2:]
            if current is None:
                current = Block(number, [])
                blocks.append(current)
            if command == "echo $?":
                current.commands[-1].exit_code = -1  # filled in by the next line
            else:
                current.commands.append(Command(command))
        elif current is not None:
            last = current.commands[-1]
            if last.exit_code == -1:
                last.exit_code = int(text)
            else:
                last.shown.append(text)
    for block in blocks:
        for command in block.commands:
            while command.shown and not command.shown[-1].strip():
                command.shown.pop()  # the blank line that ends the block
    return blocks


def elsewhere(block: Block) -> bool:
    return any(w in c.line for c in block.commands for w in ELSEWHERE)


BLOCKS = [b for b in readme_blocks() if not elsewhere(b)]


def reader_files(root: Path) -> None:
    """The files the README's examples name as the reader's own: an empty scenarios directory,
    a file where a directory belongs, a lab file with a typo, a compressed capture, and a log
    pasted into a mail (quoted and wrapped at 72 columns)."""
    (root / "empty").mkdir()
    (root / "afile").write_text("")
    (root / "bad.toml").write_text(
        'boards_dir = "boards"\n[[board]]\nname = "v0"\ntype = "virtual"\n'
        'xen_profile = "xen-4.22"\n'
        'power = { backend = "virtual", faults = { stall = { stage = "xne" } } }\n'
    )
    log = REPO / "tests" / "data" / "fvp-xen-4.21-bit15.log"
    (root / "nightly-console.log.gz").write_bytes(gzip.compress(log.read_bytes()))
    pasted = []
    for line in (REPO / "tests" / "data" / "juno-xen-4.22-bit15.log").read_text().splitlines():
        pasted += textwrap.wrap(f"> {line}", 72, drop_whitespace=False) or [">"]
    (root / "pasted.txt").write_text("\n".join(pasted) + "\n")


def line_pattern(shown: str) -> str:
    """One shown line as a regex for the real one."""
    out = []
    for token in re.split(r"(<run-id>|\d+\.\d+| {2,})", shown.rstrip()):
        if token == "<run-id>":
            out.append(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
        elif re.fullmatch(r"\d+\.\d+", token):
            out.append(r"\d+\.\d+")
        elif token.startswith("  "):
            out.append(" +")
        else:
            out.append(re.escape(token))
    return "".join(out) + " *"


def output_pattern(shown: list[str]) -> re.Pattern[str]:
    parts = [r"(?:[^\n]*\n)*?" if s.strip() == "..." else line_pattern(s) + r"\n" for s in shown]
    return re.compile("".join(parts))


def test_the_matcher_catches_a_wrong_line_and_tolerates_only_what_varies():
    pattern = output_pattern(["run <run-id>: 1 pass", "...", "x   1.4  ok"])
    assert pattern.fullmatch("run 20261201T233315Z-5ef26c: 1 pass\nmore\nx 12.5  ok\n")
    assert not pattern.fullmatch("run 20261201T233315Z-5ef26c: 2 pass\nx 1.4  ok\n")
    assert not pattern.fullmatch("run 20261201T233315Z-5ef26c: 1 pass\nx 1.4  FAIL\n")
    assert not pattern.fullmatch("run 20261201T233315Z-5ef26c: 1 pass\nx 1.4  ok\nextra\n")


def test_the_readme_shows_the_operator_commands():
    shown = {c.line.split()[1] if c.line.startswith("hil") else c.line.split()[0]
             for b in BLOCKS for c in b.commands}  # fmt: skip
    assert {"run", "check", "boards", "scenarios", "triage", "pytest"} <= shown


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checkout")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    (root / "lab.toml").write_bytes((REPO / "lab.toml").read_bytes())
    reader_files(root)
    return root


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "COLUMNS": "80",  # what the README shows
    }
    env.pop("HIL_LAB", None)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


def needs_qemu(block: Block) -> bool:
    return any("qemu0" in c.line for c in block.commands)


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            b,
            id=b.name,
            # Two boards' suites, one of them booting QEMU: minutes on a loaded 2-core runner.
            marks=[pytest.mark.qemu, pytest.mark.timeout(600)] if needs_qemu(b) else [],
        )
        for b in BLOCKS
    ],
)
def test_a_readme_example_is_what_the_command_prints(block: Block, checkout: Path):
    if needs_qemu(block) and toolchain.missing():
        pytest.skip("needs qemu-system-aarch64 + cross gcc + TF-A source: scripts/setup-system.sh")
    for command in block.commands:
        if "results/latest" in command.line and not (checkout / "results" / "latest").exists():
            shell("hil run --scenario one-non-secure", checkout)  # the reader has run hil before
        done = shell(command.line, checkout)
        # pytest's own "(h:mm:ss)" after a summary over a minute is its clock, not its result;
        # blank lines after the last line show nothing.
        real = re.sub(r" \(\d+:\d\d:\d\d\)", "", done.stdout).rstrip("\n")
        real += "\n" if real else ""
        pattern = output_pattern(command.shown)
        assert pattern.fullmatch(real), f"$ {command.line}\n{real}"
        if command.exit_code is not None:
            assert done.returncode == command.exit_code, f"$ {command.line}\n{real}"


def test_every_block_left_out_is_still_in_the_readme():
    lines = [c.line for b in readme_blocks() for c in b.commands]
    assert all(any(w in line for line in lines) for w in ELSEWHERE)
