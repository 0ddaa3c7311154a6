import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from string import Formatter

import pytest

import hil.triage
from hil.cli import main
from hil.triage import parallel, triage_bytes, triage_file, triage_stream
from hil.triage.scan import CRASH_STARTS, MAX_LINE, XEN_BODIES
from hil.xen.messages import MESSAGES

DATA = Path(__file__).parent / "data"

LOG_421 = b"""NOTICE:  Booting Trusted Firmware
(XEN) Xen version 4.21.0 (ci@lab) (gcc 12.2) debug=n
(XEN) ARM FF-A Mediator version 1.1
(XEN) ARM FF-A Firmware version 1.2
(XEN) ffa: Firmware is not using bit 15 convention for IDs !!
(XEN) ffa: Secure partition with id 0x0001 cannot be used
(XEN) ffa: Firmware is not using bit 15 convention for IDs !!
(XEN) ffa: Secure partition with id 0x0002 cannot be used
(XEN) Using TEE mediator for FF-A
(d1) ffa: Secure partition with id 0x0003 cannot be used
"""

# Same firmware on 4.22, without mediator version line: the single header decides the profile.
LOG_422 = b"""(XEN) [    0.100000] Xen version 4.22.0 (ci@lab) (gcc 13.3) debug=n
(XEN) [    0.131402] ARM FF-A Firmware version 1.2
(XEN) [    0.133518] ffa: Firmware is not using bit 15 convention for IDs !!
(XEN) [    0.133520] ffa: Secure partition with id 0x0001 cannot be used
(XEN) [    0.133544] ffa: Secure partition with id 0x0002 cannot be used
(XEN) [    0.133550] ffa: Secure partition with id 0x0001 cannot be used
(XEN) [    0.133602] Using TEE mediator for FF-A
"""

CLEAN = b"(XEN) ARM FF-A Mediator version 1.2\n(XEN) Using TEE mediator for FF-A\n"


def _summary(boots: list, result: hil.triage.Triage) -> dict:
    """What ``hil triage --json`` prints, from a triage and the boots its sink got."""
    last = boots[-1].to_json()
    del last["first_line"]
    return {"verdict": result.verdict.value, **last, "boots": [b.to_json() for b in boots]}


def _triage(data: bytes) -> dict:
    boots: list = []
    return _summary(boots, triage_bytes(data, "log", boots.append))


def _stream(stream, name: str) -> dict:
    boots: list = []
    return _summary(boots, triage_stream(stream, name, boots.append))


def test_pre_cache_log_repeats_the_header():
    got = _triage(LOG_421)
    assert got["xen_version"] == "4.21.0" and got["profile"] == "xen-4.21"
    assert (got["ffa_enabled"], got["firmware_version"], got["cache_failed"]) == (
        True,
        "1.2",
        False,
    )
    assert got["dropped_sp_ids"] == [1, 2]  # the guest's line is not Xen's
    assert [(v["kind"], v["line"], v["sp_id"]) for v in got["violations"]] == [
        ("sp_unusable", 6, 1),
        ("sp_unusable", 8, 2),
    ]


def test_cached_log_prints_the_header_once():
    got = _triage(LOG_422)
    assert got["profile"] == "xen-4.22" and got["xen_version"] == "4.22.0"
    assert got["dropped_sp_ids"] == [1, 2]  # log order, no duplicates
    assert [v["line"] for v in got["violations"]] == [4, 5, 6]


@pytest.mark.parametrize(
    ("lines", "profile"),
    [
        (["ARM FF-A Mediator version 1.1"], "xen-4.21"),
        (["ARM FF-A Mediator version 1.2"], "xen-4.22"),
        (["ffa: Failed to cache SP list"], "xen-4.22"),
        (["ARM FF-A Mediator version 1.1", "ffa: Impossible number of SPs: 65535"], "xen-4.20"),
        (["Xen version 4.20.1 (a) (b)", "ARM FF-A Mediator version 1.1"], "xen-4.20"),
        (["ffa: Firmware is not using bit 15 convention for IDs !!"], "unknown"),
        (["ARM FF-A Firmware version 1.2"], "unknown"),
    ],
)
def test_profile_evidence(lines, profile):
    assert _triage("".join(f"(XEN) {t}\n" for t in lines).encode())["profile"] == profile


@pytest.mark.parametrize(
    ("text", "kind", "extra"),
    [
        ("ffa: Failed to cache SP list", "cache_failed", {}),
        ("ffa: More SPs than the maximum supported: 64 - 64", "too_many_sps", {"count": 64}),
        ("ffa: Impossible number of SPs: 65535", "impossible_sp_count", {"count": 65535}),
        ("ffa: partition info size invalid: 16", "partinfo_size_invalid", {"size": 16}),
        ("ffa: Failed to get list of SPs: -1", "sp_list_failed", {"error": -1}),
        ("ffa: Incompatible firmware version 2.0", "incompatible_version", {"version": "2.0"}),
    ],
)
def test_init_failures_are_violations_and_take_ffa_down(text, kind, extra):
    got = _triage(f"(XEN) ARM FF-A Mediator version 1.2\n(XEN) {text}\n".encode())
    [violation] = got["violations"]
    assert violation["kind"] == kind and violation["line"] == 2
    assert extra.items() <= violation.items()
    assert got["ffa_enabled"] is False


def test_no_ffa_lines_means_unknown_enablement_and_no_evidence():
    got = _triage(b"(XEN) Xen version 4.22.0 (a) (b)\nhello\n")
    assert got["ffa_enabled"] is None and got["violations"] == [] and got["profile"] == "xen-4.22"
    assert got["verdict"] == "no_evidence"


def test_several_boots_are_summarised_separately_and_the_last_wins():
    got = _triage(LOG_421 + b"NOTICE:  Booting Trusted Firmware\n" + CLEAN)
    assert [b["profile"] for b in got["boots"]] == ["xen-4.21", "xen-4.22"]
    assert [b["first_line"] for b in got["boots"]] == [1, 11]
    assert got["profile"] == "xen-4.22" and got["violations"] == [] and got["dropped_sp_ids"] == []


def test_a_second_mediator_line_starts_a_new_boot():
    got = _triage(CLEAN + CLEAN)
    assert [b["first_line"] for b in got["boots"]] == [1, 3]


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_cli_json_one_object_exit_1_on_violation(tmp_path, capsys):
    assert main(["triage", "--json", _write(tmp_path, "a.log", LOG_421)]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["file"].endswith("a.log") and got["profile"] == "xen-4.21"


def test_cli_clean_log_exits_0(tmp_path, capsys):
    name = _write(tmp_path, "ok.log", CLEAN)
    assert main(["triage", name]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{name}: clean: FF-A came up in 1 of 1 boot")
    assert "xen-4.22" in out


DAMAGED_422 = (
    b"NOTICE:  Booting Trusted Firmware\n"
    b"(XEN) Xen version 4.22.0 (ci@lab) (gcc) debug=n\n"
    b"(XEN) ARM FF-A Mediator version 1.2\n"
    b"(XEN) ffa: Firmware is\xffnot using bit 15 convention for IDs !!\n"
    b"(XEN) ffa: Secure partition with id 0x00\xff1 cannot be used\n"
    b"(XEN) Using TEE mediator for FF-A\n"
)


# FF-A came up; then dom0's creation was refused by an SP (a violation), the line's console stamp
# damaged on the UART (one byte): the line lost its stamp's form, not its FF-A words.
STAMP_DAMAGED = (
    b"NOTICE:  Booting Trusted Firmware\n"
    b"(XEN) [    0.100000] Xen version 4.22.0 (ci@lab) (gcc) debug=n\n"
    b"(XEN) [    0.131277] ARM FF-A Mediator version 1.2\n"
    b"(XEN) [    0.133602] Using TEE mediator for FF-A\n"
    b"(XEN) [    0.1~5000] ffa: Failed to report creation of vm_id 1 to  32769: res -5\n"
)


@pytest.mark.parametrize("form", ["uart-damage", "wrapped-at-40", "many-boots", "stamp-damage"])
def test_unreadable_ffa_lines_are_never_clean_and_never_blamed(tmp_path, capsys, form):
    """Xen's bit-15 lines damaged on the UART (header too), or a paste wrapped too narrow to
    rejoin: each could have been the violation, so no evidence (exit 3), not clean (0) and not a
    firmware violation (1). Among clean boots too: one such boot keeps the log from being clean."""
    data = {
        "uart-damage": DAMAGED_422,
        "wrapped-at-40": subprocess.run(
            ["fold", "-s", "-w", "40", str(DATA / "juno-xen-4.22-bit15.log")],
            capture_output=True,
            check=True,
        ).stdout,
        "many-boots": CLEAN * 3 + DAMAGED_422 + CLEAN * 3,
        "stamp-damage": STAMP_DAMAGED,
    }[form]
    assert main(["triage", "--json", _write(tmp_path, "x.log", data)]) == 3
    got = json.loads(capsys.readouterr().out)
    assert got["verdict"] == "no_evidence"
    assert "cannot be called clean" in got["reason"]
    kinds = {v["kind"] for boot in got["boots"] for v in boot["violations"]}
    assert kinds == {"unreadable_ffa_line"}


def test_a_real_violation_still_counts_beside_an_unreadable_line(tmp_path, capsys):
    assert main(["triage", _write(tmp_path, "x.log", LOG_421 + DAMAGED_422)]) == 1
    assert capsys.readouterr().out.splitlines()[0].endswith("violation in 1 of 2 boot(s)")


def test_cli_reads_binary_stdin(monkeypatch, capsys):
    log = LOG_422 + b"(XEN) Using TEE mediator for FF-A\n"
    stdin = io.TextIOWrapper(io.BytesIO(log.replace(b"\n", b"\r\n") + b"\xff\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["triage", "--json", "-"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert (got["file"], got["profile"], got["dropped_sp_ids"]) == ("-", "xen-4.22", [1, 2])


def test_cli_several_files_give_an_array_and_unreadable_exits_2(tmp_path, capsys):
    good = _write(tmp_path, "good.log", CLEAN)
    missing = str(tmp_path / "missing.log")
    assert main(["triage", "--json", good, missing, str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert [o["file"] for o in json.loads(out)] == [good]
    lines = err.splitlines()
    assert len(lines) == 2 and missing in lines[0] and str(tmp_path) in lines[1]


def test_cli_table_is_terminal_safe(tmp_path, capsys):
    log = "(XEN) Xen version 4.22.0\u202e (a) (b)\n".encode() + CLEAN
    name = _write(tmp_path, "evil\x1b[2J.log", log)
    assert main(["triage", name]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\u202e" in out


def _lines_with(path: Path, needle: bytes) -> list[int]:
    """1-based numbers of Xen lines containing ``needle``, found without the parser."""
    lines = path.read_bytes().split(b"\n")
    return [i for i, line in enumerate(lines, 1) if b"(XEN)" in line and needle in line]


def test_realistic_4_21_log():
    path = DATA / "fvp-xen-4.21-bit15.log"
    with path.open("rb") as stream:
        got = _stream(stream, path.name)
    assert (got["xen_version"], got["profile"], got["ffa_enabled"]) == ("4.21.1", "xen-4.21", True)
    assert got["dropped_sp_ids"] == [0x0001, 0x0003]
    assert [v["line"] for v in got["violations"]] == _lines_with(path, b"cannot be used")


def test_realistic_4_22_log_with_crlf_and_escapes():
    path = DATA / "juno-xen-4.22-bit15.log"
    with path.open("rb") as stream:
        got = _stream(stream, path.name)
    assert (got["xen_version"], got["profile"], got["firmware_version"]) == (
        "4.22.0",
        "xen-4.22",
        "1.2",
    )
    # dom0 Linux printing "ffa: ... cannot be used" is not Xen dropping an SP.
    assert got["dropped_sp_ids"] == [0x7FFE, 0x0010]
    assert [v["line"] for v in got["violations"]] == _lines_with(path, b"cannot be used")


def test_realistic_captured_log_with_two_boots():
    path = DATA / "juno-captured-two-boots.console.log"
    with path.open("rb") as stream:
        got = _stream(stream, path.name)
    first, _ = got["boots"]
    boot_starts = [
        i for i, line in enumerate(path.read_bytes().split(b"\n"), 1) if b"Booting" in line
    ]
    assert [b["first_line"] for b in got["boots"]] == boot_starts
    assert (first["ffa_enabled"], first["firmware_version"], first["violations"]) == (
        True,
        "1.1",
        [],
    )
    assert (got["ffa_enabled"], got["cache_failed"], got["profile"]) == (False, True, "xen-4.22")
    # tee=ffa: the failed probe is a panic, reported with its reason.
    cache, panic = got["violations"]
    assert cache["line"] == _lines_with(path, b"Failed to cache")[0]
    assert (panic["kind"], panic["line"]) == (
        "xen_panic",
        _lines_with(path, b"Panic on CPU")[0] + 1,
    )
    assert panic["text"].endswith("TEE mediator ffa from command line probe failed")


# --- verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"\x1f\x8b\x08\x00" + bytes(range(256)), "gzip-compressed"),
        (b"\xfd7zXZ\x00\x00" + b"(XEN) x" * 10, "xz-compressed"),
        (b"NOTICE:  Booting Trusted Firmware\nNOTICE:  BL1: v2.12\n", "TF-A started 1 time(s)"),
        (b"(XEN) Xen version 4.22.0 (a) (b)\n(XEN) Brought up 4 CPUs\n", "printed no FF-A line"),
        (
            b"(XEN) Xen version 4.22.0 (a) (b)\n(XEN) ARM FF-A Mediator version 1.2\n"
            b"(XEN) ARM FF-A Firmware version 1.2\n",
            "FF-A init never finished",
        ),
        (b"hello world\n" * 50, "no Xen or TF-A line"),
        (b"(d1) (XEN) ARM FF-A Mediator version 1.2\n(d1) Using TEE mediator for FF-A\n", "no Xen"),
    ],
)
def test_a_log_without_evidence_says_so_first_and_exits_3(tmp_path, capsys, data, reason):
    name = _write(tmp_path, "x.log", data)
    assert main(["triage", name]) == 3
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{name}: no evidence: ") and reason in first
    assert main(["triage", "--json", name]) == 3
    got = json.loads(capsys.readouterr().out)
    assert got["verdict"] == "no_evidence" and reason in got["reason"]


def test_the_worst_file_decides_the_exit_code(tmp_path, capsys):
    clean = _write(tmp_path, "clean.log", CLEAN)
    empty = _write(tmp_path, "empty.log", b"")
    bad = _write(tmp_path, "bad.log", LOG_421)
    assert main(["triage", clean, empty]) == 3
    assert main(["triage", "--json", clean, empty, bad]) == 1
    assert [o["verdict"] for o in json.loads(capsys.readouterr().out.splitlines()[-1])] == [
        "clean",
        "no_evidence",
        "violation",
    ]


PANIC = """(XEN) Xen version 4.22.0 (a) (b)
(XEN) ARM FF-A Mediator version 1.2
(XEN) Using TEE mediator for FF-A
(XEN) ffa: Failed to report creation of vm_id 1 to  32769: res -5
(XEN)
(XEN) ****************************************
(XEN) Panic on CPU 0:
(XEN) {reason}
(XEN) ****************************************
(XEN)
(XEN) Reboot in five seconds...
"""


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("Error creating domain 0 (rc = -5)", "dom0_create_failed"),  # 4.20-4.22 domain_build.c
        ("Error creating d0v0", "dom0_create_failed"),  # master
        ("Could not set up DOM0 guest OS (rc = -22)", "dom0_create_failed"),
        ("Xen BUG at common/page_alloc.c:1432", "xen_bug"),
        ("Assertion 'd->arch.tee' failed at arch/arm/tee/ffa.c:212", "xen_assert"),
        ("CPU0: Unexpected Trap: Data Abort", "xen_panic"),
    ],
)
def test_a_xen_crash_is_its_own_violation_with_its_line(reason, kind):
    got = _triage(PANIC.format(reason=reason).encode())
    created, crash = got["violations"]
    assert (created["kind"], created["line"]) == ("vm_created_failed", 4)
    assert crash == {"kind": kind, "line": 8, "text": f"(XEN) {reason}"}
    assert got["verdict"] == "violation"


def test_a_bug_is_reported_once_at_its_own_line_even_when_the_log_stops_in_the_dump():
    bug = "(XEN) Xen BUG at ffa.c:99\n(XEN) ----[ Xen-4.22.0  arm64  debug=y  Not tainted ]----\n"
    whole = _triage(
        (CLEAN.decode() + bug + PANIC.split("(XEN)\n", 1)[1])
        .format(reason="Xen BUG at ffa.c:99")
        .encode()
    )
    assert [(v["kind"], v["line"]) for v in whole["violations"]] == [("xen_bug", 3)]
    cut = _triage((CLEAN.decode() + bug).encode())
    assert [(v["kind"], v["line"]) for v in cut["violations"]] == [("xen_bug", 3)]


@pytest.mark.parametrize(
    "line",
    [
        "(d1) Panic on CPU 0:",
        "(XEN) DOM1: Panic on CPU 0:",
        "(XEN) [    1.000000] DOM2: Xen BUG at x.c:1",
        "(d2) [    1.000000] Assertion 'x' failed at y.c:1",
        "[    3.000000] Kernel panic - not syncing: Error creating domain 0 (rc = -5)",
        "(d1) (XEN) ffa: Failed to cache SP list",
        "(d1) ARM FF-A No firmware support",
    ],
)
def test_a_guest_relaying_a_crash_or_failure_is_not_xen(line):
    got = _triage(CLEAN + f"{line}\n(XEN) next line\n".encode())
    assert got["violations"] == [] and got["verdict"] == "clean"


# Failure wordings of every Xen with the mediator (4.20.4, 4.21.2, 4.22.0 and master ffa*.c in
# ../shared/xen; 4.18/4.19 from the reference §5, whose sources are not in ../shared/xen).
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ffa: Incompatible version 0x10002 found", "incompatible_version_legacy"),  # 4.18/4.19
        ("ffa: FFA_VERSION returned not supported", "version_not_supported_legacy"),
        ("ffa: mandatory feature id 0x84000068 missing: error -1", "mandatory_feature_missing"),
        ("ffa: Failed to map rxtx: error -2", "rxtx_map_failed_legacy"),
        ("d[IDLE]v0 Cannot retrieve the FFA version", "version_failed_vcpu"),  # 4.20/4.21
        ("ffa: Cannot retrieve the FFA version", "version_failed"),  # 4.22+
        ("ffa: unsupported SMCCC version 0x10001 (need at least 0x10002)", "smccc_unsupported"),
        ("ffa: Error during RXTX buffer init", "rxtx_init_failed"),
        ("ffa: Failed to allocate subscription lists", "subscr_alloc_failed"),
    ],
)
def test_every_releases_failure_wording_is_a_violation(tmp_path, capsys, text, kind):
    log = f"(XEN) ARM FF-A Mediator version 1.1\n(XEN) {text}\n(XEN) ARM FF-A No firmware support\n"
    got = _triage(log.encode())
    assert [(v["kind"], v["line"]) for v in got["violations"]] == [(kind, 2)]
    assert got["ffa_enabled"] is False
    assert main(["triage", _write(tmp_path, "old.log", log.encode())]) == 1


def test_ffa_giving_up_silently_is_a_violation():
    # 4.20+ give up without a line of their own when PARTITION_INFO_GET is missing.
    got = _triage(
        b"(XEN) ARM FF-A Mediator version 1.2\n(XEN) ARM FF-A Firmware version 1.1\n"
        b"(XEN) ARM FF-A Firmware does not support FFA_PARTITION_INFO_GET\n"
        b"(XEN) ARM FF-A No firmware support\n"
    )
    assert [(v["kind"], v["line"]) for v in got["violations"]] == [("no_firmware", 4)]


BOOT_422_ONE_DROPPED = (
    b"NOTICE:  Booting Trusted Firmware\n(XEN) Xen version 4.22.0 (ci@lab) (gcc) debug=n\n"
    b"(XEN) ffa: Firmware is not using bit 15 convention for IDs !!\n"
    b"(XEN) ffa: Secure partition with id 0x0001 cannot be used\n"
    b"(XEN) Using TEE mediator for FF-A\n"
)


@pytest.mark.parametrize(
    ("log", "header_line"),
    [
        # 4.22, one SP dropped: a UART framing error damaged the SP's line.
        (BOOT_422_ONE_DROPPED.replace(b"id 0x0001", b"id 0x00\xff1"), 3),
        # The same, its line lost whole (a UART overrun).
        (
            BOOT_422_ONE_DROPPED.replace(
                b"(XEN) ffa: Secure partition with id 0x0001 cannot be used\n", b""
            ),
            3,
        ),
        # 4.21 (a header before each SP's line): the first SP's line lost, the second's whole.
        (LOG_421.replace(b"(XEN) ffa: Secure partition with id 0x0001 cannot be used\n", b""), 5),
    ],
    ids=["4.22-damaged", "4.22-lost", "4.21-lost"],
)
def test_xens_bit15_header_without_its_sp_line_is_never_clean(tmp_path, capsys, log, header_line):
    # Xen prints the header only when it drops an SP: the header is the evidence that is left.
    code = main(["triage", _write(tmp_path, "lost.log", log)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(rf"line {header_line} +id_convention ", out), out
    # When each SP's line is there, it is the violation; the header adds none of its own.
    assert [v["kind"] for v in _triage(LOG_421)["violations"]] == ["sp_unusable"] * 2
    assert [v["kind"] for v in _triage(BOOT_422_ONE_DROPPED)["violations"]] == ["sp_unusable"]


def test_every_catalogue_message_and_crash_is_a_line_the_scan_looks_for():
    values = {"d": -1, "u": 1, "04x": 1, "#x": 1, "s": "d0v0", "ver": "1.2", "rest": "x"}
    texts = [
        m.render(**{n: values[spec or "s"] for _, n, spec, _ in Formatter().parse(m.template) if n})
        for m in MESSAGES
    ] + [f"{start}x" for start in CRASH_STARTS]
    for text in texts:
        for stamp in ("", "[    0.133520] ", "[2026-11-24 10:00:09.514] ", "[00000000031c4a07] "):
            assert XEN_BODIES.search(f"noise(XEN) {stamp}{text}\n".encode()), text


# --- profile against the banner ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("banner", "lines", "profile", "conflict"),
    [
        ("4.21.2", ["ARM FF-A Mediator version 1.1"], "xen-4.21", None),
        ("4.20.4", ["ARM FF-A Mediator version 1.1"], "xen-4.20", None),
        ("4.23-unstable", ["ARM FF-A Mediator version 1.2"], "xen-4.22", None),
        ("4.19.1", ["ARM FF-A Mediator version 1.1"], "unknown", None),
        ("4.22.0", ["ARM FF-A Mediator version 1.1"], "contradiction", "4.18, 4.19, 4.20, 4.21"),
        ("4.21.2", ["ffa: Failed to cache SP list"], "contradiction", "4.22+ only"),
        (
            "4.22.0",
            [
                "ffa: Firmware is not using bit 15 convention for IDs !!",
                "ffa: Secure partition with id 0x0001 cannot be used",
                "ffa: Firmware is not using bit 15 convention for IDs !!",
                "ffa: Secure partition with id 0x0002 cannot be used",
            ],
            "contradiction",
            "4.20, 4.21 only",
        ),
    ],
)
def test_the_profile_agrees_with_the_banner_or_says_they_contradict(
    banner, lines, profile, conflict
):
    log = "".join(f"(XEN) {t}\n" for t in [f"Xen version {banner} (a) (b)", *lines])
    got = _triage(log.encode())
    assert got["profile"] == profile
    if conflict is None:
        assert got["profile_conflict"] is None
    else:
        assert f"banner says Xen {banner}" in got["profile_conflict"]
        assert conflict in got["profile_conflict"]


# --- pasted logs ---------------------------------------------------------------------------


def _wrap(text: str, width: int, quote: str = "", mid_word: bool = False) -> str:
    """``text`` hard-wrapped as a mail client does: at the last space before ``width`` (which
    the break eats), or anywhere (``mid_word``), each line quoted."""
    out = []
    for line in text.splitlines():
        while len(quote + line) > width:
            cut = width - len(quote)
            if not mid_word:
                cut = line.rfind(" ", 0, cut)
            out.append(quote + line[:cut])
            line = line[cut + (0 if mid_word else 1) :]
        out.append(quote + line)
    return "\n".join(out) + "\n"


STAMPED = LOG_422.decode().replace("(XEN) [", "2026-11-24T10:00:09.514000+00:00 ns | (XEN) [")


@pytest.mark.parametrize("width", [72, 76, 80])
@pytest.mark.parametrize("quote", ["", "> ", "> > "])
@pytest.mark.parametrize("mid_word", [False, True])
def test_hard_wrapped_and_quoted_logs_keep_their_violations(width, quote, mid_word):
    pasted = _wrap(STAMPED, width, quote, mid_word)
    assert max(map(len, pasted.splitlines())) <= width
    got = _triage(pasted.encode())
    assert got["dropped_sp_ids"] == [1, 2] and got["profile"] == "xen-4.22"
    stamps = ("0.133520]", "0.133544]", "0.133550]")  # where each dropped SP's line starts
    numbers = [
        i
        for i, line in enumerate(pasted.splitlines(), 1)
        if line.endswith(stamps) or any(s + " " in line for s in stamps)
    ]
    assert [v["line"] for v in got["violations"]] == numbers  # lines of the file as given
    assert got["violations"][0]["text"].endswith("with id 0x0001 cannot be used")


def _quoted_printable(text: str) -> str:
    """RFC 2045 soft breaks at 76 columns, '=' as =3D."""
    out = []
    for line in text.replace("=", "=3D").splitlines():
        while len(line) > 75:
            cut = 75 - (2 if line[73:75].startswith("=") else 1 if line[74] == "=" else 0)
            out.append(line[:cut] + "=")
            line = line[cut:]
        out.append(line)
    return "\n".join(out) + "\n"


def test_quoted_printable_logs_keep_their_violations():
    log = STAMPED.replace(
        "(XEN) [    0.100000] Xen version 4.22.0 (ci@lab)",
        "(XEN) [    0.100000] Xen version 4.22.0 (ci=lab)",
    )
    encoded = _quoted_printable(log)
    assert "=\n" in encoded and "=3D" in encoded
    for text in (encoded, _wrap(encoded, 80, "> ")):
        got = _triage(text.encode())
        assert got["dropped_sp_ids"] == [1, 2] and got["xen_version"] == "4.22.0"
        assert len(got["violations"]) == 3


def test_a_message_after_an_over_long_line_is_not_lost(tmp_path, monkeypatch):
    flood = b"\0" * (3 * MAX_LINE) + b"x" * (2 * MAX_LINE)
    log = CLEAN + flood + b"(XEN) ffa: Secure partition with id 0x0003 cannot be used\n"
    got = _triage(log)
    assert [(v["kind"], v["line"]) for v in got["violations"]] == [("sp_unusable", 3)]
    # Also read from a mapped file in blocks, and across a block that ends mid-line.
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.setattr(hil.triage.scan, "BLOCK", 1000)
    monkeypatch.setattr(hil.triage.scan, "BLOCK_MAX", 5 * MAX_LINE + 37)
    path = tmp_path / "flood.log"
    path.write_bytes(log * 3)
    boots: list = []
    result = triage_file(path, "flood", boots.append, workers=1)
    got = [(v.kind, v.line) for b in boots for v in b.violations]
    assert got == [("sp_unusable", 3), ("sp_unusable", 6), ("sp_unusable", 9)]
    assert result.verdict.value == "violation"


# --- large logs: parts on every core -----------------------------------------------------------


def _many_boots(tmp_path: Path) -> Path:
    data_dir = Path(__file__).parent / "data"
    logs = b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()))
    long_line = b"(XEN) " + b"x" * (3 * MAX_LINE) + b"\n"
    path = tmp_path / "many-boots.log"
    path.write_bytes(
        (logs + long_line + CLEAN + b"NOTICE:  Booting Trusted Firmware\n" * 2) * 40
        + b"(XEN) ffa: Secure partition with id 0x0007 cannot be used"
    )
    return path


def test_a_part_boundary_keeps_an_unreadable_line_of_a_boot_xen_never_started(
    tmp_path, monkeypatch, capsys
):
    # A boot whose only Xen line is an FF-A line damaged on the UART (Xen never "spoke"), then
    # TF-A's banner (where a part of a large log may start), then a clean boot. Read in one go
    # the banner continues the first boot, which cannot be called clean (exit 3); read in parts
    # on several cores the damaged line must not be lost, or the log reads clean (exit 0).
    data = (
        b"NOTICE:  Booting Trusted Firmware\n"
        b"(XEN) ffa: Secure partition with id 0x00\xff1 cannot be used\n"
        b"NOTICE:  Booting Trusted Firmware\n" + CLEAN
    )
    path = tmp_path / "soak.log"
    path.write_bytes(data)
    assert main(["triage", str(path)]) == 3
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "PART_SIZE", 64)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    assert main(["triage", str(path)]) == 3
    assert "cannot be called clean" in capsys.readouterr().out


@pytest.mark.parametrize("part_size", [64, 997, 40_000])
def test_parallel_triage_of_a_file_equals_the_sequential_one(
    tmp_path, monkeypatch, capsys, part_size
):
    path = _many_boots(tmp_path)
    sequential = _triage(path.read_bytes())
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "PART_SIZE", part_size)
    assert len(parallel.part_starts(path.read_bytes(), path.stat().st_size, part_size)) > 10
    boots: list = []
    got = _summary(boots, triage_file(path, "log", boots.append, workers=2))
    assert got == sequential
    # --json: workers render most boots themselves, numbering lines from their part's start.
    assert main(["triage", "--json", str(path)]) == 1
    text = capsys.readouterr().out
    printed = json.loads(text)
    assert printed["boots"] == sequential["boots"]
    boots = text.split('"boots": [', 1)[1]
    assert boots.startswith(json.dumps(sequential["boots"][0]) + ", ")  # as json.dumps writes it
    assert printed["boot_count"] == len(sequential["boots"])
    summary = {k: v for k, v in sequential.items() if k != "boots"}
    assert {k: printed[k] for k in summary} == summary
    assert len(sequential["boots"]) > 40
    assert sequential["violations"][-1]["line"] == path.read_bytes().count(b"\n") + 1


def test_workers_die_with_their_parent(tmp_path):
    """SIGKILL the triage process: its workers go too (PR_SET_PDEATHSIG)."""
    script = (
        "import sys, time, hil.triage.parallel as p\n"
        "from hil.triage import triage_file\n"
        "from pathlib import Path\n"
        "p.PARALLEL_MIN = 0\n"
        "p.PART_SIZE = 4096\n"
        "orig = p._triage_part\n"
        "def slow(bounds):\n"
        "    time.sleep(60)\n"
        "p._triage_part = slow\n"
        "triage_file(Path(sys.argv[1]), 'x', workers=2)\n"
    )
    log = tmp_path / "big.log"
    log.write_bytes((CLEAN + b"NOTICE:  Booting Trusted Firmware\n" + b"y" * 5000 + b"\n") * 5000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    parent = subprocess.Popen([sys.executable, "-c", script, str(log)], env=env)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(children) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            children = _children(parent.pid)
        assert len(children) >= 2, "the workers never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(c) for c in children)
    finally:
        parent.kill()
        for child in children:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_reader_going_away_is_not_an_unreadable_log(tmp_path):
    log = _write(tmp_path, "many.log", (LOG_421 + b"NOTICE:  Booting Trusted Firmware\n") * 3000)
    hil = Path(sys.executable).with_name("hil")
    command = f"'{hil}' triage --json '{log}' | head -c 20; exit ${{PIPESTATUS[0]}}"
    pipe = subprocess.run(["bash", "-c", command], capture_output=True)
    assert pipe.stdout == b'{"file": "' + log.encode()[:10]
    assert (pipe.stderr, pipe.returncode) == (b"", 1)  # the log's verdict: dropped SPs


def test_a_large_log_on_several_cores_leaves_nothing_on_stderr(tmp_path):
    """The pool's workers end quietly (SIGTERM from the pool is theirs, not hil's handler)."""
    log = tmp_path / "big.log"
    log.write_bytes((LOG_421 + b"NOTICE:  Booting Trusted Firmware\n" + b"z" * 2000 + b"\n") * 400)
    script = (
        "import sys, hil.triage, hil.triage.parallel as p\n"
        "from hil.cli import main\n"
        "hil.triage.PASTE_MAX = 0\n"
        "p.PARALLEL_MIN = 0\n"
        "p.PART_SIZE = 4096\n"
        "sys.exit(main(['triage', '--json', sys.argv[1]]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    for _ in range(5):  # how the pool's end meets the workers varies from run to run
        argv = [sys.executable, "-c", script, str(log)]
        done = subprocess.run(argv, env=env, capture_output=True)
        assert (done.returncode, done.stderr) == (1, b"")
        assert json.loads(done.stdout)["boot_count"] == 401


def test_boots_replayed_from_an_earlier_boots_xen_lines_read_as_line_by_line(tmp_path, monkeypatch):
    """Many short boots, as a soak writes them: most are replayed from an earlier boot's run of
    Xen lines (Scanner._run), with the same result as reading every line."""
    from bench.triage_bench import short_boot

    rng = random.Random(5)
    variants = [b"".join(short_boot(rng)) for _ in range(6)]
    odd = [
        LOG_421.replace(b"(XEN) Using", b"(d1) noise (XEN) Using"),  # glued: read line by line
        b"NOTICE:  Booting Trusted Firmware\r(XEN) ffa: Failed to cache SP list\n",
        PANIC.format(reason="Xen BUG at x.c:1").encode(),
    ]
    boots = [rng.choice(variants) for _ in range(600)]
    for at in (50, 300, 301, 550):
        boots.insert(at, odd[at % 3])
    data = b"".join(boots)
    expected = _triage(data)  # a small log: read line by line (pasted-log path)
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.setattr(hil.triage.scan, "BLOCK", 64 << 10)
    replays = []
    real = hil.triage.scan.Scanner._run

    def spy(self, buf, block, lo, first, stop):
        replays.append(self._key(first, stop) in self._runs)
        return real(self, buf, block, lo, first, stop)

    monkeypatch.setattr(hil.triage.scan.Scanner, "_run", spy)
    path = tmp_path / "soak.log"
    path.write_bytes(data)
    got: list = []
    assert _summary(got, triage_file(path, "log", got.append, workers=1)) == expected
    assert replays.count(True) > 500


def test_a_log_saved_as_utf16_reads_as_its_text(tmp_path, capsys):
    name = _write(tmp_path, "win.log", LOG_421.decode().replace("\n", "\r\n").encode("utf-16"))
    assert main(["triage", "--json", name]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["dropped_sp_ids"] == [1, 2] and [v["line"] for v in got["violations"]] == [6, 8]


def test_hil_triage_starts_without_loading_the_lab_back_ends():
    """``hil triage`` imports its own command only: loading every back-end (a third of a second
    of CPU) would be a third of its time budget on a GiB log (README, Performance)."""
    script = (
        "import sys\n"
        "from hil.cli import main\n"
        "try:\n"
        "    main(['triage', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('hil.lab', 'hil.commands.run', 'hil.console')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "[]"
    assert "usage: hil triage" in done.stdout
