import io
import json
import sys
from pathlib import Path

import pytest

from hil.cli import main
from hil.triage import triage_file, triage_stream

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


def _triage(data: bytes) -> dict:
    return triage_stream(io.BytesIO(data), "log").to_json()


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


def test_no_ffa_lines_means_unknown_enablement():
    got = _triage(b"(XEN) Xen version 4.22.0 (a) (b)\nhello\n")
    assert got["ffa_enabled"] is None and got["violations"] == [] and got["profile"] == "unknown"


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
    assert main(["triage", _write(tmp_path, "ok.log", CLEAN)]) == 0
    assert "xen-4.22" in capsys.readouterr().out


def test_cli_reads_binary_stdin(monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO(LOG_422.replace(b"\n", b"\r\n") + b"\xff\n"))
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
    name = _write(tmp_path, "evil\x1b[2J.log", "(XEN) Xen version 4.22.0\u202e (a) (b)\n".encode())
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
        got = triage_stream(stream, path.name).to_json()
    assert (got["xen_version"], got["profile"], got["ffa_enabled"]) == ("4.21.1", "xen-4.21", True)
    assert got["dropped_sp_ids"] == [0x0001, 0x0003]
    assert [v["line"] for v in got["violations"]] == _lines_with(path, b"cannot be used")


def test_realistic_4_22_log_with_crlf_and_escapes():
    path = DATA / "juno-xen-4.22-bit15.log"
    with path.open("rb") as stream:
        got = triage_stream(stream, path.name).to_json()
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
        got = triage_stream(stream, path.name).to_json()
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
    assert [v["line"] for v in got["violations"]] == _lines_with(path, b"Failed to cache")


@pytest.mark.parametrize("segment_size", [64, 997, 4096])
def test_parallel_triage_of_a_file_equals_the_sequential_one(tmp_path, segment_size):
    # Every shipped log, several times over (so boots and lines straddle every kind of cut),
    # plus a line far longer than a segment.
    data_dir = Path(__file__).parent / "data"
    logs = b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()))
    long_line = b"(XEN) " + b"x" * (3 * segment_size) + b"\n"
    path = tmp_path / "many-boots.log"
    path.write_bytes(
        (logs + long_line) * 5 + b"(XEN) ffa: Secure partition with id 0x0007 cannot be used"
    )
    with path.open("rb") as stream:
        sequential = triage_stream(stream, "log").to_json()
    parallel = triage_file(path, "log", workers=2, segment_size=segment_size).to_json()
    assert parallel == sequential
    assert len(sequential["boots"]) > 5
    assert sequential["violations"][-1]["line"] == path.read_bytes().count(b"\n") + 1
