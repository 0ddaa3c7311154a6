"""An example lab test suite built on hil's pytest plugin. Run it against a lab:

    pytest --lab lab.toml --board virtual0 examples/lab-tests

Every test runs once per selected board, against the Xen profile the lab declares for it."""

from hil.results import Verdict
from hil.xen.log import MessageKey, XenMessage


def dropped_ids(booted) -> list[int]:
    return [
        e.fields["id"]
        for e in booted.events
        if isinstance(e, XenMessage) and e.key is MessageKey.SP_UNUSABLE
    ]


def test_shipped_firmware_follows_the_bit_15_convention(xen_log):
    booted = xen_log("all-secure")
    assert booted.case.verdict is Verdict.PASS, "\n".join(booted.case.diff)
    assert dropped_ids(booted) == []


def test_xen_drops_an_sp_without_bit_15_and_names_it(xen_log, oracle):
    booted = xen_log("one-non-secure")
    assert dropped_ids(booted) == [0x0042]
    assert booted.observation.transcript == oracle("one-non-secure").transcript


def test_console_shows_the_board_booting(board, console):
    marks = console.mark()
    board.power.reset()
    console.expect("NOTICE:  Booting Trusted Firmware", timeout=10, since=marks)
