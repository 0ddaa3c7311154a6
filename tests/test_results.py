from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.errors import ConfigError, ExitCode
from hil.results import (
    BootOutcome,
    BootRecord,
    CaseResult,
    RunResult,
    StageStatus,
    StageTiming,
    Verdict,
    console_role,
    new_run_id,
    validate_artifact_path,
    validate_name,
)

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
times = st.floats(0, 1e5, allow_nan=False)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def stage_timings(draw: st.DrawFn) -> StageTiming:
    status = draw(st.sampled_from(StageStatus))
    name, console = draw(st.text(max_size=10)), draw(names)
    if status is StageStatus.NOT_REACHED:
        return StageTiming(name, console, None, None, status)
    start = draw(times)
    end = None if status is not StageStatus.OK and draw(st.booleans()) else start + draw(times)
    return StageTiming(name, console, start, end, status)


@st.composite
def boot_records(draw: st.DrawFn) -> BootRecord:
    start = draw(times)
    return BootRecord(
        draw(st.integers(1, 5)),
        start,
        start + draw(times),
        draw(st.sampled_from(BootOutcome)),
        draw(st.none() | st.text(max_size=8)),
        draw(st.text(max_size=20)),
    )


@st.composite
def case_results(draw: st.DrawFn, board: str, scenario: str) -> CaseResult:
    paths = st.from_regex(r"\A[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,2}\Z").filter(
        lambda p: ".." not in p.split("/")
    )
    return CaseResult(
        board=board,
        scenario=scenario,
        verdict=draw(st.sampled_from(Verdict)),
        started=draw(aware),
        duration_s=draw(times),
        message=draw(st.text(max_size=30)),
        diff=draw(st.lists(st.text(max_size=30), max_size=4)),
        attempts=draw(st.integers(0, 5)),
        stages=draw(st.lists(stage_timings(), max_size=4)),
        artifacts=draw(st.dictionaries(st.text(max_size=12), paths, max_size=3)),
        provenance=draw(st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=3)),
        expected_profile=draw(st.none() | st.text(max_size=10)),
        board_profile=draw(st.none() | st.text(max_size=10)),
        boots=draw(st.lists(boot_records(), max_size=3)),
    )


@st.composite
def run_results(draw: st.DrawFn) -> RunResult:
    keys = draw(st.lists(st.tuples(names, names), max_size=4, unique=True))
    started = draw(aware)
    return RunResult(
        run_id=new_run_id(started),
        lab_file=draw(st.text(max_size=20)),
        started=started,
        finished=draw(st.none() | st.just(started + timedelta(seconds=draw(times)))),
        cases=[draw(case_results(b, s)) for b, s in keys],
        interrupted=draw(st.booleans()),
        provenance=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
    )


def case(verdict: Verdict, board: str = "juno-r2", scenario: str = "basic", **kw) -> CaseResult:
    return CaseResult(board, scenario, verdict, started=T0, duration_s=1.0, **kw)


def run(*verdicts: Verdict, interrupted: bool = False) -> RunResult:
    cases = [case(v, scenario=f"s{i}") for i, v in enumerate(verdicts)]
    return RunResult("r1", "lab.toml", T0, T0, cases, interrupted=interrupted)


@given(run_results())
def test_run_result_survives_a_json_round_trip(result):
    assert RunResult.from_json(result.to_json()) == result


@pytest.mark.parametrize(
    ("verdicts", "interrupted", "expected"),
    [
        ((Verdict.PASS, Verdict.PASS), False, ExitCode.OK),
        ((), False, ExitCode.OK),
        ((Verdict.PASS, Verdict.FAIL), False, ExitCode.CHECK_FAILED),
        ((Verdict.INFRA_ERROR, Verdict.FAIL), False, ExitCode.CHECK_FAILED),
        ((Verdict.FAIL, Verdict.NOT_RUN), True, ExitCode.CHECK_FAILED),
        ((Verdict.PASS, Verdict.INFRA_ERROR), False, ExitCode.INFRA),
        ((Verdict.PASS, Verdict.NOT_RUN), False, ExitCode.INFRA),
        ((Verdict.PASS,), True, ExitCode.INFRA),
    ],
)
def test_exit_code_tells_firmware_failures_from_lab_failures(verdicts, interrupted, expected):
    assert run(*verdicts, interrupted=interrupted).exit_code is expected


@given(st.lists(st.sampled_from(Verdict), max_size=6), st.booleans())
def test_exit_code_is_zero_only_for_a_complete_all_pass_run(verdicts, interrupted):
    code = run(*verdicts, interrupted=interrupted).exit_code
    assert (code is ExitCode.OK) == (not interrupted and set(verdicts) <= {Verdict.PASS})
    assert (code is ExitCode.CHECK_FAILED) == (Verdict.FAIL in verdicts)


def test_counts_list_every_verdict_including_zero():
    counts = run(Verdict.PASS, Verdict.PASS, Verdict.FAIL).counts()
    assert counts == {Verdict.PASS: 2, Verdict.FAIL: 1, Verdict.INFRA_ERROR: 0, Verdict.NOT_RUN: 0}


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 65, ".hidden", "..", "a b", "é", "a\n"])
def test_unsafe_board_names_are_refused_naming_the_field(bad):
    with pytest.raises(ConfigError, match=r"^board name .* not a safe file name"):
        case(Verdict.PASS, board=bad)
    with pytest.raises(ConfigError, match=r"^scenario name"):
        case(Verdict.PASS, scenario=bad)


@pytest.mark.parametrize("good", ["juno-r2", "fvp_base.revc", "0", "x" * 64])
def test_safe_names_are_accepted(good):
    assert validate_name("board", good) == good


@given(st.text(max_size=70))
def test_accepted_names_never_escape_the_run_directory(text):
    try:
        validate_name("board", text)
    except ConfigError:
        return
    assert "/" not in text and "\\" not in text and not text.startswith(".") and len(text) <= 64


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.log", "a/../../x", "", "a\\..\\b"])
def test_artifact_paths_must_stay_inside_the_run_directory(bad):
    with pytest.raises(ConfigError, match="relative to the run directory"):
        validate_artifact_path("events", bad)
    with pytest.raises(ConfigError):
        case(Verdict.PASS, artifacts={"events": bad})


def test_run_ids_sort_by_start_time_and_are_unique_and_safe():
    moments = [T0 + timedelta(seconds=s) for s in (0, 1, 59, 3600, 86400 * 40)]
    ids = [new_run_id(m) for m in moments]
    assert sorted(ids) == ids
    assert ids[0].startswith("20261124T020000Z-")
    assert all(validate_name("run id", i) for i in ids)
    assert len({new_run_id(T0) for _ in range(50)}) == 50


def test_run_id_is_in_utc_whatever_the_zone_of_the_clock():
    local = T0.astimezone(timezone(timedelta(hours=-7)))
    assert new_run_id(local)[:16] == new_run_id(T0)[:16]


def test_malformed_documents_are_one_line_errors_naming_the_source():
    good = run(Verdict.PASS).to_dict()
    with pytest.raises(ConfigError, match=r"^old\.json: missing field 'lab_file'"):
        RunResult.from_dict({k: v for k, v in good.items() if k != "lab_file"}, "old.json")
    with pytest.raises(ConfigError, match=r"^x\.json: schema 7"):
        RunResult.from_dict(good | {"schema": 7}, "x.json")
    broken_case = good | {"cases": [good["cases"][0] | {"verdict": "maybe"}]}
    with pytest.raises(ConfigError, match=r"^y\.json: malformed"):
        RunResult.from_dict(broken_case, "y.json")
    with pytest.raises(ConfigError, match=r"^z\.json: not JSON"):
        RunResult.from_json("{", "z.json")


def test_stage_timings_must_be_consistent_with_their_status():
    with pytest.raises(ConfigError, match="end_s must be >= start_s"):
        StageTiming("bl2", "uart0", 5.0, 4.0, StageStatus.OK)
    with pytest.raises(ConfigError, match="status ok needs end_s"):
        StageTiming("bl2", "uart0", 5.0, None, StageStatus.OK)
    with pytest.raises(ConfigError, match="not reached, yet has timings"):
        StageTiming("bl2", "uart0", 1.0, None, StageStatus.NOT_REACHED)
    with pytest.raises(ConfigError, match="start_s"):
        StageTiming("bl2", "uart0", float("nan"), None, StageStatus.TIMEOUT)


def test_case_needs_a_zoned_start_and_a_finite_duration():
    with pytest.raises(ConfigError, match="juno-r2/basic: started must be a timezone-aware"):
        CaseResult("juno-r2", "basic", Verdict.PASS, datetime(2026, 1, 1), 1.0)
    with pytest.raises(ConfigError, match="duration_s"):
        CaseResult("juno-r2", "basic", Verdict.PASS, T0, float("inf"))


def test_message_is_kept_to_one_line():
    assert case(Verdict.FAIL, message="boot\r\nstalled\nhere").message == "boot stalled here"


def test_a_board_scenario_pair_appears_once_per_run():
    with pytest.raises(ConfigError, match="juno-r2/basic is listed twice"):
        RunResult("r1", "lab.toml", T0, None, [case(Verdict.PASS), case(Verdict.FAIL)])


def test_console_logs_are_found_by_role():
    artifacts = {
        console_role("uart0", "log"): "b/s/uart0.log",
        console_role("uart0", "raw"): "b/s/uart0.raw",
        console_role("sec:1", "log"): "b/s/sec1.log",
        "events": "b/s/events.json",
    }
    found = case(Verdict.PASS, artifacts=artifacts).console_logs()
    assert found == {"uart0": "b/s/uart0.log", "sec:1": "b/s/sec1.log"}


def test_summaries_written_before_boot_attempts_were_recorded_still_load():
    document = run(Verdict.PASS).to_dict()
    del document["cases"][0]["boots"]
    assert RunResult.from_dict(document).cases[0].boots == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"number": 0}, "boot attempt 0: number must be an integer >= 1"),
        ({"start_s": 2.0, "end_s": 1.0}, "boot attempt 1: end_s must be >= start_s"),
        ({"end_s": float("nan")}, "boot attempt 1: start_s and end_s must be numbers >= 0"),
        ({"outcome": "exploded"}, "'exploded' is not a valid BootOutcome"),
    ],
)
def test_boot_records_are_checked_when_read(fields, message):
    document = run(Verdict.PASS).to_dict()
    boot = {"number": 1, "start_s": 0.0, "end_s": 1.0, "outcome": "booted"} | fields
    document["cases"][0]["boots"] = [boot]
    with pytest.raises(ConfigError) as error:
        RunResult.from_dict(document, "summary.json")
    assert str(error.value).startswith("summary.json: ") and message in str(error.value)
