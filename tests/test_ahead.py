"""A board's next bundle is made while its current case boots (hil.ahead): each case still boots
its own bundle, a bundle that cannot be made fails only its own case, and a run stopped with a
bundle made ahead leaves neither that bundle nor a process behind."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hil import case
from hil.boards import platform
from hil.cli import main
from hil.errors import InfraError
from tests.labs import write_lab

FIRST, SECOND, THIRD = "all-secure", "one-non-secure", "zero-sps"


def run(capsys, lab: Path, *scenarios: str) -> tuple[int, str]:
    code = main(["run", "--lab", str(lab), *(f"--scenario={s}" for s in scenarios)])
    return code, capsys.readouterr().out


def cases(lab: Path) -> dict[str, dict]:
    run_dir = (lab.parent / "results" / "latest").resolve()
    data = json.loads((run_dir / "summary.json").read_text())
    return {c["scenario"]: c for c in data["run"]["cases"]}


def test_the_next_bundle_is_made_while_the_current_case_boots(tmp_path, capsys, monkeypatch):
    made, write = threading.Event(), platform.write_bundle
    order: list[str] = []

    def recording(scenario, *args, **kwargs):
        bundle = write(scenario, *args, **kwargs)
        order.append(f"bundle {scenario.name}")
        if scenario.name == SECOND:
            made.set()
        return bundle

    boot = case.boot

    def booting(*args, **kwargs):
        result = boot(*args, **kwargs)
        made.wait(10)  # the first case ends once the second's bundle is made (or after 10 s)
        order.append("booted")
        return result

    monkeypatch.setattr(platform, "write_bundle", recording)
    monkeypatch.setattr(case, "boot", booting)
    code, _ = run(capsys, write_lab(tmp_path, {"vb0": {}}), FIRST, SECOND)
    assert code == 0
    assert order == [f"bundle {FIRST}", f"bundle {SECOND}", "booted", "booted"]


def test_a_bundle_that_cannot_be_made_fails_its_own_case_only(tmp_path, capsys, monkeypatch):
    write = platform.write_bundle

    def failing(scenario, *args, **kwargs):
        if scenario.name == SECOND:
            raise InfraError("board 'vb0': firmware: fiptool failed (exit 1)")
        return write(scenario, *args, **kwargs)

    monkeypatch.setattr(platform, "write_bundle", failing)
    lab = write_lab(tmp_path, {"vb0": {}})
    code, out = run(capsys, lab, FIRST, SECOND, THIRD)
    assert code == 3
    verdicts = {name: (c["verdict"], c["message"]) for name, c in cases(lab).items()}
    assert verdicts == {
        FIRST: ("pass", "behaves as xen-4.22"),
        SECOND: ("infra_error", "board 'vb0': firmware: fiptool failed (exit 1)"),
        THIRD: ("pass", "behaves as xen-4.22"),
    }
    # Said on the case's own line as it ends, and in the table, never on another case's.
    said = [line for line in out.splitlines() if "fiptool failed" in line]
    assert len(said) == 2 and all(SECOND in line for line in said)
    # Its console capture, prepared ahead, was never opened: no empty capture is left to read.
    run_dir = (lab.parent / "results" / "latest").resolve()
    captures = [f"{console}.{kind}" for console in ("ns", "secure") for kind in ("raw", "log")]
    assert [name for name in captures if (run_dir / "vb0" / SECOND / name).exists()] == []
    # Nor does its result name one: summary.json listed the four files it then deleted, and the
    # report showed each console's last lines as "unreadable", as if the capture had been lost.
    assert [role for role in cases(lab)[SECOND]["artifacts"] if role.startswith("console:")] == []
    assert sorted(p.name for p in (run_dir / "vb0" / THIRD).glob("*.raw")) == [
        "ns.raw",
        "secure.raw",
    ]


def _children() -> list[str]:
    """This process's live children (``pid name``), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(f"{stat.parent.name} {name}")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_with_the_next_bundle_made_leaves_no_trace_of_it(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {"stuck": {"power": {"faults": {"stall": {"stage": "xen"}}}, "timeouts": {"xen": 20}}},
        boot_attempts=1,
    )
    stopped = threading.Event()

    def ctrl_c_once_the_next_bundle_is_made() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            first = list(tmp_path.glob(f"results/*/stuck/{FIRST}/ns.raw"))
            # Its bundle made and its console capture prepared.
            ready = list(tmp_path.glob(f"results/*/stuck/{SECOND}/bundle/bundle.json"))
            ready = ready and list(tmp_path.glob(f"results/*/stuck/{SECOND}/ns.raw"))
            if ready and first and b"BL31" in first[0].read_bytes():
                stopped.set()
                # Ctrl-C, to the process (raise_signal would signal this thread: hil's main
                # thread, waiting on its boards, would hear of it only once they are done).
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    threading.Thread(target=ctrl_c_once_the_next_bundle_is_made, daemon=True).start()
    code, _ = run(capsys, lab, FIRST, SECOND)
    assert stopped.is_set() and code == 3
    run_dir = (tmp_path / "results" / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True
    assert {c["scenario"]: c["verdict"] for c in summary["run"]["cases"]} == {
        FIRST: "not_run",
        SECOND: "not_run",
    }
    # The case that never ran has nothing on disk; no half-made bundle or temporary is left.
    assert not (run_dir / "stuck" / SECOND).exists()
    assert [p for p in run_dir.rglob("*") if ".tmp" in p.name or p.name.startswith("images-")] == []
    assert _children() == []
