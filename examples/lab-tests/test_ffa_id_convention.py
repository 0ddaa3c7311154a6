"""An example lab test suite built on hil's pytest plugin. Run it against a lab:

    pytest --lab lab.toml --board virtual0 --board qemu0 -n 2 --dist loadgroup examples/lab-tests/

Every test runs once per selected board, against the Xen profile the lab declares for it: what a
board must show comes from the oracle for that profile, never from a number written here, so the
suite holds on a board with Xen 4.21, 4.22 or no Xen at all (qemu0, profile "none")."""

from hil.results import Verdict
from hil.xen.log import MessageKey, XenMessage, identify


def dropped_ids(booted) -> list[int]:
    """The SP ids Xen said it cannot use, as the board printed them."""
    return [
        e.fields["id"]
        for e in booted.events
        if isinstance(e, XenMessage) and e.key is MessageKey.SP_UNUSABLE
    ]


def expected_dropped_ids(expectation) -> list[int]:
    """The SP ids the oracle says this profile's Xen drops, read from the lines it predicts."""
    found = [identify(line.text) for line in expectation.boot.lines]
    return [fields["id"] for key, fields, _ in filter(None, found) if key is MessageKey.SP_UNUSABLE]


def test_shipped_firmware_follows_the_bit_15_convention(xen_log):
    booted = xen_log("all-secure")
    assert booted.case.verdict is Verdict.PASS, "\n".join(booted.case.diff)
    assert dropped_ids(booted) == []


def test_xen_drops_exactly_the_sps_its_profile_drops(xen_log, oracle):
    booted = xen_log("one-non-secure")
    expected = oracle("one-non-secure")
    assert dropped_ids(booted) == expected_dropped_ids(expected)
    assert booted.observation.transcript == expected.transcript


def test_console_shows_the_board_booting(board, console):
    marks = console.mark()
    board.power.reset()
    console.expect("NOTICE:  Booting Trusted Firmware", timeout=30, since=marks)
