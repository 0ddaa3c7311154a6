"""A boot that Xen's own panic() ended is reported as a Xen panic with the reason Xen gave: a
FAIL (Xen under test did not boot), never a PASS, never a diff that blames the firmware's
answers, and never an infra error (it is not the lab's fault)."""

from __future__ import annotations

from pathlib import Path

from hil.case import XEN_PANICKED, xen_panic
from hil.xen.log import parse_bytes
from tests.reliability.support import hil_run, write_lab

# What Xen's debug builds print when CPU1 comes online just after smpboot.c's 1 s deadline.
TIMER_ASSERT = (
    "Assertion '!cpu_online(old_cpu) && cpu_online(new_cpu)' failed at common/timer.c:588"
)


def panic_text(*lines: str) -> dict[str, dict[str, str]]:
    return {"text": {"stage": "dom0", "text": "".join(f"{line}\r\n" for line in lines)}}


def test_a_xen_panic_names_xen_and_its_reason(tmp_path: Path) -> None:
    stars = "(XEN) " + "*" * 40
    faults = panic_text(stars, "(XEN) Panic on CPU 0:", f"(XEN) {TIMER_ASSERT}", stars)
    out = hil_run(write_lab(tmp_path / "lab", faults), tmp_path / "results")
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (1, "fail", 1)
    assert out.case["message"].startswith(f"{XEN_PANICKED} on CPU 0: {TIMER_ASSERT}; ")
    assert out.case["diff"] == []  # nothing was compared: the boot did not get that far


def test_a_panic_that_is_not_xens_is_not_called_one(tmp_path: Path) -> None:
    faults = panic_text("SError Interrupt on CPU0, code 0xbe000011")
    out = hil_run(write_lab(tmp_path / "lab", faults), tmp_path / "results")
    assert (out.exit_code, out.case["verdict"]) == (1, "fail")
    assert not out.case["message"].startswith(XEN_PANICKED)
    assert "SError" in out.case["message"]


def test_the_reason_is_xens_own_line_not_a_guests() -> None:
    events = parse_bytes(
        b"(XEN) Panic on CPU 1:\n(d0) HILPROBE begin\n(XEN) Xen BUG at page_alloc.c:42\n", "ns"
    )
    assert xen_panic(events, "stage 'probe'") == (
        f"{XEN_PANICKED} on CPU 1: Xen BUG at page_alloc.c:42; stage 'probe'"
    )
    cut = parse_bytes(b"(XEN) Panic on CPU 0:\n", "ns")
    assert xen_panic(cut, "x") == f"{XEN_PANICKED} on CPU 0: (reason not captured); x"
    assert xen_panic(parse_bytes(b"(XEN) Xen version 4.22.0\n", "ns"), "x") is None
