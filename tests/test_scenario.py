import os
import re
import tracemalloc
from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.ffa import NIL_UUID, DescriptorLayout, FunctionId, PartitionInfo, unpack_descriptors
from hil.ffa.abi import V1_0
from hil.ffa.spmc import SpmcConfig
from hil.scenario import load_scenario, load_scenarios

ISSUE_SCENARIOS = {
    "all-secure",
    "one-non-secure",
    "several-non-secure",
    "all-non-secure",
    "duplicate-ids",
    "fpi-size-8",
    "fpi-size-4096",
    "count-63",
    "count-64",
    "zero-sps",
    "v1-3-layout",
}


def write(tmp_path: Path, text: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_shipped_scenarios_cover_the_issue_list_and_build():
    scenarios = {s.name: s for s in load_scenarios()}
    assert set(scenarios) >= ISSUE_SCENARIOS
    for scenario in scenarios.values():
        config = scenario.spmc_config()
        assert SpmcConfig.decode(config.encode()) == config
        assert scenario.probe_plan().guest_version == scenario.guest_version


def test_well_formed_list_is_packed_as_the_spmc_serves_it():
    s = load_scenarios(names=["all-secure"])[0]
    config = s.spmc_config()
    assert (config.count, config.fpi_size) == (3, 24)
    assert [p.id for p in unpack_descriptors(config.data, DescriptorLayout.V1_1)] == [
        0x8001,
        0x8002,
        0x8003,
    ]


def test_crafted_sizes_and_counts_reach_the_spmc_unchanged():
    by_name = {s.name: s.spmc_config() for s in load_scenarios()}
    assert (by_name["fpi-size-8"].fpi_size, len(by_name["fpi-size-8"].data)) == (8, 16)
    assert (by_name["fpi-size-4096"].fpi_size, len(by_name["fpi-size-4096"].data)) == (4096, 4096)
    assert by_name["count-64"].count == 64
    assert by_name["zero-sps"].count == 0 and by_name["zero-sps"].data == b""
    assert by_name["v1-3-layout"].fpi_size == 48
    assert load_scenarios(names=["duplicate-ids"])[0].guest_version == V1_0


def test_repeat_properties_by_name_and_unsupported(tmp_path):
    path = write(
        tmp_path,
        """
unsupported = ["FFA_RXTX_UNMAP"]
[[partition]]
id = 0x8001
properties = ["direct_req_recv", "aarch64"]
repeat = 3
""",
    )
    s = load_scenario(path)
    assert [p.id for p in s.partitions] == [0x8001, 0x8002, 0x8003]
    assert all(p == PartitionInfo(p.id, 1, 0x101, NIL_UUID) for p in s.partitions)
    assert FunctionId.RXTX_UNMAP not in s.spmc_config().supported
    assert FunctionId.PARTITION_INFO_GET in s.spmc_config().supported


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layout = 'v2'", "field 'layout': 'v2' is not one of"),
        ("colour = 1", "field 'colour': unknown key"),
        (
            "[[partition]]\nuuid = '486178e0-e7f8-11e3-bc5e-0002a5d5c51b'",
            "'partition[0].id': missing",
        ),
        ("[[partition]]\nid = 0x10000", "partition[0]': partition id 65536 is outside u16"),
        ("[[partition]]\nid = 1\nuuid = 'nope'", "partition[0]': 'nope' is not a UUID"),
        (
            "[[partition]]\nid = 1\nproperties = ['wings']",
            "partition[0].properties': unknown 'WINGS'",
        ),
        ("[[partition]]\nid = 1\nflavour = 2", "'partition[0].flavour': unknown key"),
        ("[[partition]]\nid = 0xffff\nrepeat = 2", "partition[0].repeat'"),
        ("guest_version = '1'", "field 'guest_version'"),
        ("guest_version = 1.1", "field 'guest_version': expected str"),
        ("count = -1", "field 'count': -1 is outside u32"),
        ("unsupported = ['FFA_TELEPORT']", "'FFA_TELEPORT' is not an FF-A function"),
        ("partition = 3", "expected an array of tables"),
        ("this is = not toml", "not valid TOML"),
    ],
)
def test_bad_scenario_gives_one_line_naming_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unsafe_or_unknown_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="scenario name"):
        load_scenario(write(tmp_path, "", name=".hidden"))
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        load_scenarios(tmp_path, ["nope"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_edge_scenarios_sit_where_xens_partinfo_checks_change_their_answer():
    """Each edge scenario is exactly at the boundary its name claims (issue 9: read from
    ffa_partinfo.c of 4.20, 4.21 and 4.22)."""
    by_name = {s.name: s for s in load_scenarios()}
    config = {name: s.spmc_config() for name, s in by_name.items()}
    assert [p.id for p in by_name["bit15-boundary"].partitions] == [0x7FFF, 0x8000, 0xFFFF]
    assert by_name["sp-id-is-dom0"].partitions[0].id == 0x0001  # dom0's FF-A id
    assert config["fpi-size-25"].fpi_size == 24 + 1  # 4.21/4.22 minimum is 24
    assert config["fpi-size-4095"].fpi_size == 4096 - 1  # 4.22 refuses >= 4096
    overflow = config["page-overflow-41"]
    assert overflow.count < 64 and overflow.count * overflow.fpi_size > 4096
    # Every id Xen 4.20/4.21 read at init stays inside the page (past it is whatever lies there).
    assert (overflow.count - 1) * overflow.fpi_size + 2 <= 4096
    assert sum(p.uuid == NIL_UUID for p in by_name["nil-uuid-entries"].partitions) == 2
    versions = {str(by_name[f"firmware-1-{m}"].firmware_version) for m in (0, 2, 3)}
    assert versions == {"1.0", "1.2", "1.3"}
    send2 = config["send2-without-acquire"]
    assert send2.supports(FunctionId.MSG_SEND2) and not send2.supports(FunctionId.RX_ACQUIRE)
    # The probe's "absent" UUID is absent from every scenario's plan answers.
    for scenario in by_name.values():
        absent = scenario.probe_plan().queries[-1].uuid
        assert absent not in {p.uuid for p in scenario.partitions}


@pytest.mark.parametrize("kind", ["missing", "empty", "a file"])
def test_a_scenarios_dir_that_selects_nothing_is_an_error(tmp_path, kind):
    """A run of zero scenarios would pass having checked nothing."""
    directory = tmp_path / "scenarios"
    if kind == "empty":
        directory.mkdir()
    elif kind == "a file":
        directory.write_text("")
    expected = {"missing": "does not exist", "empty": "holds no scenario", "a file": "is not a"}
    with pytest.raises(ConfigError, match=f"scenarios directory .* {expected[kind]}"):
        load_scenarios(directory)


def test_a_huge_fpi_size_is_reported_as_crafted_but_never_allocated(tmp_path):
    """fpi_size is what the SPMC reports, up to a u32; what it serves is one page, and that is
    all hil lays out, whatever the size claims."""
    entries = "[[partition]]\nid = 0x8001\nrepeat = 4\n"
    scenario = load_scenario(write(tmp_path, f"fpi_size = {64 << 20}\n{entries}"))
    tracemalloc.start()
    try:
        config = scenario.spmc_config()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"laying out one page took {peak} bytes"
    assert (config.fpi_size, config.count, len(config.data)) == (64 << 20, 4, 4096)
    # The first entry fills the page: its descriptor, then zeroes up to the claimed size.
    assert config.data == scenario.partitions[0].pack(DescriptorLayout.V1_1).ljust(4096, b"\0")
    huge = load_scenario(write(tmp_path, f"fpi_size = 0xffffffff\n{entries}")).spmc_config()
    assert (huge.fpi_size, len(huge.data)) == (0xFFFFFFFF, 4096)
    assert SpmcConfig.decode(huge.encode()) == huge


def test_more_partitions_than_a_page_can_hold_is_one_line(tmp_path):
    text = "[[partition]]\nid = 0x8000\nrepeat = 256\n" * 2 + "[[partition]]\nid = 0x9000\n"
    with pytest.raises(ConfigError, match=r"field 'partition\[2\]': more than 512 partitions"):
        load_scenario(write(tmp_path, text))


def test_deep_nesting_and_fifos_are_one_line_not_a_traceback_or_a_hang(tmp_path):
    deep = write(tmp_path, "tags = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_scenario(deep)
    deep.unlink()
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(ConfigError, match=r"fifo.toml: cannot read scenario: not a regular file"):
        load_scenarios(tmp_path)


def test_more_uuids_than_the_probe_plan_holds_is_one_line(tmp_path):
    """The probe asks for every distinct UUID; its plan window is a page (layout.h)."""
    layout = (Path(__file__).parents[1] / "firmware" / "probe" / "layout.h").read_text()
    assert re.search(r"#define PROBE_PLAN_SIZE\s+0x1000\b", layout)
    entry = '[[partition]]\nid = {id}\nuuid = "00000000-0000-0000-0000-{id:012x}"\n'
    fits = "".join(entry.format(id=0x8000 + i) for i in range(1, 83))
    assert len(load_scenario(write(tmp_path, fits)).probe_plan().encode()) <= 4096
    too_many = fits + entry.format(id=0x9000)
    with pytest.raises(ConfigError, match="83 distinct UUIDs make a 4112-byte probe plan"):
        load_scenario(write(tmp_path, too_many))
