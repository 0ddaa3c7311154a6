import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.compare import Observation, compare
from hil.ffa import NIL_UUID, FfaFormatError, FfaVersion, PartitionInfo, parse_uuid
from hil.ffa.abi import V1_0, V1_1, V1_2, ErrorCode
from hil.ffa.partition import DescriptorLayout
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import SpmcConfig, spmc_partition_info_get
from hil.probe import (
    UNKNOWN_UUID,
    PartinfoAnswer,
    ProbePlan,
    ProbeQuery,
    TranscriptBuilder,
    format_transcript,
    parse_probe_line,
    parse_transcript,
    run_plan,
)
from hil.xen.oracle import expect

UUID_A = parse_uuid("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8")
UUID_B = parse_uuid("b0b1b2b3-0000-4000-8000-000000000002")


class DirectSpmc:
    """The probe talking to the test SPMC with no hypervisor in between."""

    def __init__(self, config: SpmcConfig) -> None:
        self.config = config

    def version(self, requested: FfaVersion) -> int:
        return self.config.version.word

    def rxtx_map(self) -> FfaReply:
        return FfaReply.success()

    def partition_info_get(self, uuid, flags) -> FfaReply:
        return spmc_partition_info_get(self.config, uuid, flags)

    def rx_release(self) -> FfaReply:
        return FfaReply.success()


def config() -> SpmcConfig:
    return SpmcConfig.from_partitions(
        [PartitionInfo(0x8001, 1, 0x103, UUID_A), PartitionInfo(0x0042, 1, 0x3, UUID_B)]
    )


def test_standard_plan_asks_count_and_list_for_nil_each_uuid_and_an_unknown_one():
    plan = ProbePlan.standard(V1_1, [UUID_A, UUID_A, UUID_B])
    assert plan.versions == (V1_0, V1_1, V1_2, V1_1)
    assert [(q.uuid, q.count_only) for q in plan.queries] == [
        (u, c) for u in (NIL_UUID, UUID_A, UUID_B, UNKNOWN_UUID) for c in (True, False)
    ]


@given(
    st.lists(st.sampled_from([V1_0, V1_1, V1_2]), min_size=1, max_size=5),
    st.lists(st.tuples(st.uuids(), st.integers(0, 0xFFFFFFFF)), max_size=10),
)
def test_plan_blob_round_trips(versions, queries):
    plan = ProbePlan(tuple(versions), tuple(ProbeQuery(u, f) for u, f in queries))
    assert ProbePlan.decode(plan.encode()) == plan


def test_plan_blob_with_bad_magic_or_length_is_refused():
    blob = ProbePlan.standard(V1_1, []).encode()
    with pytest.raises(FfaFormatError, match="magic"):
        ProbePlan.decode(b"XXXXXXXX" + blob[8:])
    with pytest.raises(FfaFormatError):
        ProbePlan.decode(blob[:-3])


def test_transcript_lines_round_trip_through_the_parser():
    plan = ProbePlan.standard(V1_1, [UUID_A, UUID_B])
    transcript = run_plan(plan, DirectSpmc(config()))
    lines = list(format_transcript(transcript, plan, exception_level=2))
    assert lines[0] == "HILPROBE begin versions=4 queries=8 el=2"
    assert lines[-1] == "HILPROBE end"
    assert parse_transcript(["(XEN) noise", *(f"(d0) {line}" for line in lines)]) == transcript


def _hole(lines: list[str]) -> str | None:
    """Why ``lines`` are not one whole probe run (as hil.case judges them), or None."""
    builder = TranscriptBuilder()
    try:
        for line in lines:
            parsed = parse_probe_line(line)
            if parsed:
                builder.feed(*parsed)
    except FfaFormatError as exc:
        return str(exc)
    return builder.incomplete()


def _whole_run() -> list[str]:
    plan = ProbePlan.standard(V1_1, [UUID_A, UUID_B])
    transcript = run_plan(plan, DirectSpmc(config()))
    return list(format_transcript(transcript, plan, exception_level=1))


def test_a_whole_probe_run_has_no_hole():
    assert _hole(_whole_run()) is None
    assert _hole(["HILPROBE error bad-plan", "HILPROBE end"]) is None


def test_any_one_lost_or_repeated_probe_line_is_noticed():
    """A line whose mark was damaged vanishes from the transcript: what is left must not read as
    a (different) whole run, or a lost line would be blamed on the firmware."""
    lines = _whole_run()
    assert len(lines) > 20
    for i in range(len(lines)):
        assert _hole(lines[:i] + lines[i + 1 :]) is not None, f"line {i} lost: {lines[i]}"
        assert _hole(lines[: i + 1] + lines[i:]) is not None, f"line {i} repeated: {lines[i]}"


def test_two_probe_runs_spliced_are_noticed():
    lines = _whole_run()
    assert "second begin" in (_hole(lines[:5] + lines) or "")


def test_rx_dump_is_zero_padded_to_what_the_reply_claims():
    # count 3 claimed but only one 24-byte descriptor written: the probe reads zeroes after it.
    crafted = SpmcConfig(PartitionInfo(0x8001, 1, 0, UUID_A).pack(), 3, 24)
    plan = ProbePlan((V1_1,), (ProbeQuery(NIL_UUID, 0),))
    answer = run_plan(plan, DirectSpmc(crafted)).partinfo[0]
    assert len(answer.reply.rx) == 72
    assert answer.reply.rx[24:] == bytes(48)
    assert answer.release is not None and answer.release.ok


def test_spmc_uuid_filter_and_errors():
    cfg = config()
    assert spmc_partition_info_get(cfg, NIL_UUID, 1) == FfaReply.success(2, 0)
    only_b = spmc_partition_info_get(cfg, UUID_B, 0)
    assert (only_b.w2, only_b.w3) == (1, 24) and only_b.rx[:2] == b"\x42\x00"
    assert spmc_partition_info_get(cfg, UNKNOWN_UUID, 1).error_code is ErrorCode.INVALID_PARAMETERS
    # With an 8-byte list no entry carries a UUID, so no UUID can match.
    small = SpmcConfig.from_partitions([PartitionInfo(0x8001, uuid=UUID_A)], DescriptorLayout.V1_0)
    assert spmc_partition_info_get(small, UUID_A, 1).error_code is ErrorCode.INVALID_PARAMETERS


def test_spmc_config_blob_round_trip_and_refusals():
    cfg = SpmcConfig(bytes(range(40)), 63, 4096, FfaVersion(1, 2), (0x84000063,))
    assert SpmcConfig.decode(cfg.encode()) == cfg
    with pytest.raises(FfaFormatError, match="magic"):
        SpmcConfig.decode(b"NOTSPMC!" + cfg.encode()[8:])
    with pytest.raises(FfaFormatError, match="length"):
        SpmcConfig.decode(cfg.encode() + b"x")
    with pytest.raises(FfaFormatError, match="one page"):
        SpmcConfig(bytes(4097), 1, 24)


def test_probe_line_parser_ignores_non_probe_text():
    assert parse_probe_line("(XEN) ARM FF-A Firmware version 1.1") is None
    assert parse_probe_line("HILPROBE end") == ("end", {})
    with pytest.raises(FfaFormatError, match="partinfo"):
        parse_transcript(["HILPROBE partinfo q=0 uuid=zz flags=0x0 w0=0x0 w2=0x0 w3=0x0"])


def test_probe_error_line_is_recorded_and_shown_by_a_compare() -> None:
    lines = ["(XEN) noise", "HILPROBE error bad-plan", "HILPROBE end"]
    transcript = parse_transcript(lines)
    assert transcript.error == "bad-plan" and transcript.complete
    plan = ProbePlan((V1_1,), (ProbeQuery(NIL_UUID, 0),))
    assert list(format_transcript(transcript, plan)) == lines[1:]
    config = SpmcConfig.from_partitions([])
    diff = compare(expect("none", config, plan), Observation([], transcript), plan)
    assert "+HILPROBE error bad-plan" in diff
    assert any(line.startswith("-HILPROBE begin ") for line in diff)


def test_a_scenario_using_the_absent_uuid_does_not_turn_not_found_into_found():
    plan = ProbePlan.standard(V1_1, [UNKNOWN_UUID, UUID_A])
    absent = plan.queries[-1].uuid
    assert absent not in (UNKNOWN_UUID, UUID_A, NIL_UUID)
    assert [q.uuid for q in plan.queries] == [
        u for u in (NIL_UUID, UNKNOWN_UUID, UUID_A, absent) for _ in range(2)
    ]
    config = SpmcConfig.from_partitions([PartitionInfo(0x8001, 1, 0x103, UNKNOWN_UUID)])
    answers = expect("xen-4.22", config, plan).transcript.partinfo
    assert answers[2].reply.ok  # the scenario's own SP, found
    assert answers[-1].reply.error_code is ErrorCode.INVALID_PARAMETERS  # still "not found"
    # Without the collision the plan is the one every scenario always had.
    assert ProbePlan.standard(V1_1, [UUID_A]).queries[-1].uuid == UNKNOWN_UUID


def test_registers_undefined_after_unknown_function_are_never_judged():
    plan = ProbePlan.standard(V1_1, [UUID_A])
    unknown = 0xFFFFFFFF

    def transcript(w2: int, w3: int, w0: int = unknown):
        t = parse_transcript([])
        t.versions = [(v, unknown) for v in plan.versions]
        t.rxtx_map = FfaReply(unknown, w2)
        t.partinfo = [PartinfoAnswer(q, FfaReply(w0, w2, w3)) for q in plan.queries]
        t.complete = True
        return t

    # What the probe printed: its own arguments echoed, e.g. its RX buffer address.
    echoed = transcript(0x48093000, 0x02005EBC)
    wire = list(format_transcript(echoed, plan))
    assert "HILPROBE rxtx_map w0=0xffffffff w2=0x48093000" in wire
    assert parse_transcript(wire) == echoed  # the line format itself is unchanged
    judged = list(format_transcript(echoed, plan, judged=True))
    assert "HILPROBE rxtx_map w0=0xffffffff w2=undefined" in judged
    assert judged == list(format_transcript(transcript(0, 0), plan, judged=True))
    # w0 is defined, and so is everything in an answer that is not "unknown function".
    assert judged != list(format_transcript(transcript(0, 0, w0=0x84000060), plan, judged=True))
    assert list(format_transcript(transcript(1, 0, w0=0x84000061), plan, judged=True)) != list(
        format_transcript(transcript(0, 0, w0=0x84000061), plan, judged=True)
    )
