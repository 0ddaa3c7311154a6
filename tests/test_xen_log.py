import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.probe import PREFIX
from hil.terminal import plain_text
from hil.xen.log import (
    MAX_LINE,
    NORMAL_WORLD_PANICS,
    SECURE_WORLD_PANICS,
    XEN_MESSAGE_LINES,
    ConsoleLine,
    LogParser,
    MessageKey,
    ProbeLine,
    Stage,
    XenMessage,
    format_capture_line,
    identify,
    parse_bytes,
    parse_capture_line,
    starts_boot,
)
from hil.xen.messages import MESSAGES
from hil.xen.messages import identify as catalogue_identify

# Each catalogue message as Xen prints it (typed from the reference, not rendered from the
# catalogue), with the fields a user gets back.
GOLDEN: list[tuple[str, str, dict[str, int | str]]] = [
    ("TEE Mediator ffa selected from command line", "tee_selected", {"name": "ffa"}),
    ("TEE mediator ffa from command line probe failed", "tee_probe_failed", {"name": "ffa"}),
    ("TEE Mediator bogus from command line not supported", "tee_not_supported", {"name": "bogus"}),
    ("Using TEE mediator for FF-A", "tee_using", {"name": "FF-A"}),
    ("ARM FF-A Mediator version 1.2", "mediator_version", {"version": "1.2"}),
    (
        "ffa: unsupported SMCCC version 0x10001 (need at least 0x10002)",
        "smccc_unsupported",
        {"found": 0x10001, "needed": 0x10002},
    ),
    ("ffa: Cannot retrieve the FFA version", "version_failed", {}),
    ("d0v0 Cannot retrieve the FFA version", "version_failed_vcpu", {"vcpu": "d0v0"}),
    (
        "ffa: Incompatible firmware version 32767.65535",
        "incompatible_version",
        {"version": "32767.65535"},
    ),
    ("ARM FF-A Firmware version 1.1", "firmware_version", {"version": "1.1"}),
    ("ARM FF-A Firmware does not support FFA_RUN", "abi_unsupported", {"abi": "FFA_RUN"}),
    (
        "ARM FF-A Firmware reports FFA_MSG_SEND2 without FFA_RX_ACQUIRE",
        "send2_without_acquire",
        {},
    ),
    ("ffa: assuming RX_ACQUIRE support (workaround)", "rx_acquire_workaround", {}),
    ("ffa: Error during RXTX buffer init", "rxtx_init_failed", {}),
    ("ffa: Failed to get list of SPs: -1", "sp_list_failed", {"error": -1}),
    (
        "ffa: More SPs than the maximum supported: 64 - 64",
        "too_many_sps",
        {"count": 64, "max": 64},
    ),
    ("ffa: Impossible number of SPs: 65535", "impossible_sp_count", {"count": 65535}),
    ("ffa: partition info size invalid: 8", "partinfo_size_invalid", {"size": 8}),
    ("ffa: Failed to allocate subscription lists", "subscr_alloc_failed", {}),
    ("ffa: Failed to cache SP list", "cache_failed", {}),
    ("ffa: Firmware is not using bit 15 convention for IDs !!", "id_convention", {}),
    ("ffa: Secure partition with id 0x7ffe cannot be used", "sp_unusable", {"id": 0x7FFE}),
    ("ffa: Error releasing SPMC RX buffer: -6", "rx_release_failed", {"error": -6}),
    ("ffa: request_irq irq 8 failed: error -22", "request_irq_failed", {"irq": 8, "error": -22}),
    ("ARM FF-A No firmware support", "no_firmware", {}),
    ("ffa: VM to VM is enabled, system is insecure !!", "vm_to_vm_insecure", {}),
    ("ARM FF-A only available between VMs", "vm_to_vm_only", {}),
    (
        "ffa: Failed to report creation of vm_id 2 to  32769: res -5",
        "vm_created_failed",
        {"vm_id": 2, "sp_id": 32769, "res": -5},
    ),
    (
        "d2: ffa: Failed to report destruction of vm_id 3 to 32770: res -5",
        "vm_destroyed_failed",
        {"domain": "d2:", "vm_id": 3, "sp_id": 32770, "res": -5},
    ),
    ("d2: ffa: Remaining cleanup, retrying", "cleanup_retry", {"domain": "d2:"}),
    (
        "ffa: mandatory feature id 0x84000064 missing: error -1",
        "mandatory_feature_missing",
        {"fid": 0x84000064, "error": -1},
    ),
    (
        "ffa: Incompatible version 0x10000 found",
        "incompatible_version_legacy",
        {"version": 0x10000},
    ),
    ("ffa: FFA_VERSION returned not supported", "version_not_supported_legacy", {}),
    ("ffa: Failed to map rxtx: error -3", "rxtx_map_failed_legacy", {"error": -3}),
    (
        "Xen version 4.22.0 (ci@lab) (gcc 13.3) debug=n",
        "xen_version",
        {"version": "4.22.0", "rest": "(ci@lab) (gcc 13.3) debug=n"},
    ),
    ("Error creating domain 0 (rc = -5)", "dom0_create_failed", {"rc": -5}),
    ("Panic on CPU 0:", "panic", {"cpu": 0}),
]

STAMPS = ["", "[    1.234567] ", "[ 12345.678901] ", "[2026-11-24 10:00:00] "]
STAMPS += ["[2026-11-24 10:00:00.123] ", "[00000000031c4a07] "]


def test_golden_covers_the_whole_catalogue():
    assert {key for _, key, _ in GOLDEN} == {m.key for m in MESSAGES}


@pytest.mark.parametrize("stamp", STAMPS)
@pytest.mark.parametrize(("text", "key", "fields"), GOLDEN, ids=[g[1] for g in GOLDEN])
def test_every_message_parses_with_every_timestamp_format(text, key, fields, stamp):
    data = f"NOTICE:  BL31: v2.13.0\r\n(XEN) {stamp}{text}\r\n".encode()
    [tfa, event] = parse_bytes(data, "uart0")
    assert isinstance(tfa, ConsoleLine) and tfa.stage is Stage.TFA
    assert isinstance(event, XenMessage)
    assert (event.key, event.fields, event.line, event.console) == (key, fields, 2, "uart0")
    assert event.raw == f"(XEN) {stamp}{text}"
    assert (event.xen_time.text if event.xen_time else "") == stamp.strip()[1:-1].strip()


def test_users_match_a_message_type_with_its_typed_fields():
    events = parse_bytes(b"(XEN) ffa: Secure partition with id 0x0010 cannot be used\n")
    match events[0]:
        case XenMessage(key=MessageKey.SP_UNUSABLE, fields={"id": sp_id}):
            assert sp_id == 0x10
        case _:
            pytest.fail("not matched as SP_UNUSABLE")


def test_timestamps_decode_to_their_kind():
    lines = b"".join(f"(XEN) {s}ffa: Failed to cache SP list\n".encode() for s in STAMPS[1:])
    stamps = [e.xen_time for e in parse_bytes(lines)]
    assert stamps[0].since_boot == pytest.approx(1.234567)
    assert stamps[1].since_boot == pytest.approx(12345.678901)
    assert stamps[2].wallclock == datetime(2026, 11, 24, 10, 0, 0)
    assert stamps[3].wallclock == datetime(2026, 11, 24, 10, 0, 0, 123000)
    assert stamps[4].cycles == 0x31C4A07 and stamps[4].since_boot is None


@pytest.mark.parametrize("domain", [0, 1, 17])
def test_a_guest_printing_xen_text_is_not_a_xen_event(domain):
    events = parse_bytes(f"(d{domain}) ffa: Failed to cache SP list\n".encode())
    assert [type(e) for e in events] == [ConsoleLine]
    assert (events[0].stage, events[0].domain) == (Stage.GUEST, domain)
    assert events[0].text == "ffa: Failed to cache SP list"


@pytest.mark.parametrize(
    ("line", "domain"),
    [
        ("(d1) (XEN) ffa: Secure partition with id 0x0011 cannot be used", 1),
        ("(XEN) DOM2: ffa: Secure partition with id 0x0011 cannot be used", 2),
        ("(XEN) [    4.000000] DOM3: (XEN) ffa: Failed to cache SP list", 3),
        ("\xff\xfe(d4) (XEN) Panic on CPU 0:", 4),  # noise glued in front changes nothing
        ("noise(XEN) DOM5: ARM FF-A Mediator version 1.2", 5),
    ],
)
def test_relayed_guest_output_is_never_a_xen_message_whatever_it_holds(line, domain):
    [event] = parse_bytes(line.encode("latin-1") + b"\r\n")
    assert isinstance(event, ConsoleLine)
    assert (event.stage, event.domain) == (Stage.GUEST, domain)


def test_a_guest_relayed_probe_line_belongs_to_the_guest():
    lines = b"(XEN) DOM1: HILPROBE end\n\xff(d2) HILPROBE end\n"
    assert [(type(e), e.domain) for e in parse_bytes(lines)] == [(ProbeLine, 1), (ProbeLine, 2)]


@pytest.mark.parametrize(
    "cut",
    [
        b"\xff\x00garbage",
        b"(XEN) ffa: Secure partition with id 0x00",  # a reboot in the middle of Xen's line
        b"NOTICE:  BL31: Built : 00:0",  # ... of TF-A's
        b"HILPROBE rx q=1 off=0x0040 hex=0011",  # ... of the probe's
        b"[    1.000000] Booting Linux on phys",  # ... of dom0's kernel
        b"SPMC: version 1.",
    ],
)
def test_a_line_cut_by_a_reboot_ends_where_the_next_boot_begins(cut):
    first, banner = parse_bytes(cut + b"NOTICE:  Booting Trusted Firmware\r\n")
    assert not starts_boot(first) and first.line == banner.line == 1
    assert starts_boot(banner) and banner.raw == "NOTICE:  Booting Trusted Firmware"


@pytest.mark.parametrize(
    "line", [b"(d1) NOTICE:  Booting Trusted Firmware", b"(d1) xNOTICE:  Booting Trusted Firmware"]
)
def test_a_guest_printing_the_tf_a_banner_starts_no_boot(line):
    [guest] = parse_bytes(line + b"\r\n")
    assert not starts_boot(guest) and guest.domain == 1


def test_probe_lines_from_dom0_and_from_other_domains():
    data = f"{PREFIX} begin versions=1 queries=0 el=1\n(d2) [    3.5] {PREFIX} end\n".encode()
    first, second = parse_bytes(data)
    assert isinstance(first, ProbeLine) and (first.domain, first.kind) == (0, "begin")
    assert first.fields == {"versions": "1", "queries": "0", "el": "1"}
    assert isinstance(second, ProbeLine) and (second.domain, second.kind) == (2, "end")
    assert second.xen_time.since_boot == 3.5


def test_boot_stages_are_told_apart():
    data = (
        b"NOTICE:  Booting Trusted Firmware\nWARNING: BL31: no SCP\nSPMC: version 1.2\n"
        b"I/TC: OP-TEE version 4.3\n[    0.000000] Booting Linux\nbuildroot login:\n"
    )
    got = [(e.stage, e.level) for e in parse_bytes(data)]
    assert got == [
        (Stage.TFA, "NOTICE"),
        (Stage.TFA, "WARNING"),
        (Stage.SPMC, None),
        (Stage.SPMC, None),
        (Stage.LINUX, None),
        (Stage.OTHER, None),
    ]


def test_escape_sequences_and_controls_never_reach_the_text():
    data = b"\x1b]0;evil title\x07\x1b[1;31m(XEN) \x1b[0mffa: Failed to cache SP list\x1b[K\x07\n"
    [event] = parse_bytes(data)
    assert isinstance(event, XenMessage) and event.key is MessageKey.CACHE_FAILED
    assert event.raw == "(XEN) ffa: Failed to cache SP list"


def test_invalid_utf8_is_replaced_not_raised():
    [event] = parse_bytes(b"(XEN) Xen version 4.22.0 (\xff\xfe\xc3) x\n")
    assert event.key is MessageKey.XEN_VERSION and "\ufffd" in event.fields["rest"]


def test_lone_cr_splits_a_line_and_keeps_its_number():
    events = parse_bytes(b"one\ntyped\r(XEN) ffa: Failed to cache SP list\r\n")
    assert [(e.line, type(e)) for e in events] == [
        (1, ConsoleLine),
        (2, ConsoleLine),
        (2, XenMessage),
    ]


def test_nul_flood_costs_no_memory_and_hides_no_message():
    parser = LogParser()
    for _ in range(40):
        assert parser.feed(b"\0" * 256 * 1024) == []
        assert len(parser._pending) <= MAX_LINE
    [event] = parser.feed(b"(XEN) ffa: Failed to cache SP list\n") + parser.close()
    assert event.key is MessageKey.CACHE_FAILED and event.line == 1


def test_an_endless_line_is_capped_and_the_next_line_parsed():
    parser = LogParser()
    events = []
    for _ in range(20):
        events += parser.feed(b"x" * 100_000)
        assert len(parser._pending) <= MAX_LINE
    events += parser.feed(b"\n(XEN) ffa: Failed to cache SP list\n")
    assert [e.line for e in events] == [1, 2] and len(events[0].raw) == MAX_LINE


def test_host_capture_lines_give_host_time_and_console():
    when = datetime(2026, 11, 24, 10, 0, 1, 250000, tzinfo=UTC)
    line = format_capture_line(when, "juno0-uart0", "(XEN) [    0.5] ffa: Failed to cache SP list")
    [event] = parse_bytes(line.encode() + b"\n", "ignored")
    assert (event.host_time, event.console, event.key) == (when, "juno0-uart0", "cache_failed")
    assert event.xen_time.since_boot == 0.5


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"))), st.datetimes())
def test_capture_format_round_trips(text, when):
    parsed = parse_capture_line(format_capture_line(when, "uart0", text))
    assert parsed is not None and (parsed.host_time, parsed.console, parsed.text) == (
        when,
        "uart0",
        text,
    )


@pytest.mark.parametrize("stamp", STAMPS)
def test_the_fast_path_selects_every_catalogue_message_and_only_xen_lines(stamp):
    for text, key, _ in GOLDEN:
        assert XEN_MESSAGE_LINES.search(f"(XEN) {stamp}{text}".encode()), key
        assert not XEN_MESSAGE_LINES.search(f"(d1) {stamp}{text}".encode()), key


@pytest.mark.parametrize(("text", "key", "fields"), GOLDEN, ids=[g[1] for g in GOLDEN])
def test_fast_identify_agrees_with_the_catalogue(text, key, fields):
    msg, values = catalogue_identify(text)
    assert identify(text) == (MessageKey(msg.key), values, msg.level) and msg.key == key


SHORT_LOG = (
    b"NOTICE:  Booting Trusted Firmware\r\n\x1b[32mSPMC: version 1.2\x1b[0m\r\n"
    b"(XEN) [    0.131277] ARM FF-A Mediator version 1.2\r\n"
    b"(XEN) ffa: Secure partition with id 0x7ffe cannot be used\n"
    b"(d1) ffa: Failed to cache SP list\n\xff\xfe\0\0garbage\rHILPROBE end\n"
    b"(XEN) ffa: Failed to cache SP list"
)


def _chunked(data: bytes, cuts: list[int], markers=None) -> list:
    parser = LogParser("c", markers)
    events, last = [], 0
    for cut in [*sorted(cuts), len(data)]:
        events += parser.feed(data[last:cut])
        last = cut
    return events + parser.close()


def test_chunking_at_every_byte_boundary_changes_nothing():
    whole = parse_bytes(SHORT_LOG, "c")
    assert len(whole) == 8 and whole[-1].key is MessageKey.CACHE_FAILED
    for cut in range(len(SHORT_LOG) + 1):
        assert _chunked(SHORT_LOG, [cut]) == whole, cut
    assert _chunked(SHORT_LOG, list(range(len(SHORT_LOG)))) == whole


_LINES = st.sampled_from(
    [
        b"(XEN) ffa: Secure partition with id 0x0001 cannot be used",
        b"(XEN) [    1.000001] ARM FF-A Firmware version 1.2",
        b"(d3) ffa: Failed to cache SP list",
        b"HILPROBE version req=0x00010001 w0=0x00010001",
        b"[    0.000000] Booting Linux",
        b"\x1b[1m\x1b]0;t\x07NOTICE:  BL1",
        b"\xff\xfe\x80garbage ffa FF-A",
        b"\0" * 50,
        b"",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_LINES, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=30),
    st.lists(st.integers(0, 3000), max_size=12),
)
def test_chunking_never_changes_the_events(lines, cuts):
    data = b"".join(text + end for text, end in lines)
    cuts = [c for c in cuts if c <= len(data)]
    whole = parse_bytes(data, "c")
    assert _chunked(data, cuts) == whole
    # The fast path reports the same Xen messages, with the same line numbers.
    fast = [
        e for e in _chunked(data, cuts, [XEN_MESSAGE_LINES, b"ffa"]) if isinstance(e, XenMessage)
    ]
    assert fast == [e for e in whole if isinstance(e, XenMessage)]


@given(st.binary(max_size=300))
def test_any_bytes_parse_without_exception_to_safe_text(data):
    for event in parse_bytes(data):
        assert "\x1b" not in event.raw and "\n" not in event.raw and "\0" not in event.raw


def test_plain_text_keeps_tabs_and_drops_c1_csi():
    assert plain_text(b"a\tb\xc2\x9b31mc") == "a\tbc"


def _panics(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE)


@pytest.mark.parametrize(
    ("text", "panic"),
    [
        ("(XEN) Panic on CPU 0:", True),
        ("\xff(XEN) [    3.000000] Xen BUG at common/page_alloc.c:42", True),  # noise in front
        ("[    2.000000] Kernel panic - not syncing: VFS", True),  # dom0's kernel
        ("PANIC at PC : 0x0000000004003ff8", True),  # TF-A's boot images
        ("(d1) Kernel panic - not syncing: VFS", False),  # a guest's, relayed
        ("(d1) (XEN) Panic on CPU 0:", False),
        ("(XEN) DOM2: Kernel panic - not syncing", False),  # a dom0less guest's vpl011
        ("(XEN) DOM2: (XEN) Panic on CPU 0:", False),
        ("(XEN) d1v0 Kernel panic in guest", False),  # Xen's own line, not its panic
    ],
)
def test_normal_world_panics_are_the_boards_never_a_guests(text, panic):
    assert bool(_panics(NORMAL_WORLD_PANICS).search(f"ok\n{text}\r\n")) is panic


@pytest.mark.parametrize(
    ("text", "panic"),
    [
        ("Panic: SP 8001 aborted", True),  # Hafnium
        ("E/TC:0 0 Panic at core/kernel/panic.c:32 <__do_panic>", True),  # OP-TEE
        ("Unhandled Exception in EL3.", True),  # TF-A's runtime
        ("SP 8001: SError injected by test case 7", False),
        ("I/TC: Kernel panic handling test passed", False),
    ],
)
def test_secure_world_panics_are_its_own_panic_lines(text, panic):
    assert bool(_panics(SECURE_WORLD_PANICS).search(f"ok\n{text}\r\n")) is panic
