"""Properties of the oracle over arbitrary well-formed SPMC lists (<= 63 entries)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from hil.ffa import NIL_UUID, PartitionInfo, is_secure_id
from hil.ffa.abi import V1_0, V1_1, V1_2
from hil.ffa.partition import DescriptorLayout
from hil.ffa.spmc import SpmcConfig, spmc_partition_info_get
from hil.probe import UNKNOWN_UUID
from hil.xen.oracle import get_profile

COUNT = 1

partitions = st.builds(
    PartitionInfo,
    id=st.integers(0, 0xFFFF),
    exec_ctx=st.integers(0, 0xFFFF),
    properties=st.integers(0, 0x7FF),
    uuid=st.sampled_from([NIL_UUID, UNKNOWN_UUID]) | st.uuids(),
)
configs = st.builds(
    SpmcConfig.from_partitions,
    st.lists(partitions, max_size=63),
    st.sampled_from([DescriptorLayout.V1_1, DescriptorLayout.V1_3]),
)


def secure_count(config: SpmcConfig) -> int:
    return sum(is_secure_id(int.from_bytes(e[:2], "little")) for e in config.entries())


def ready_guest(profile: str, config: SpmcConfig, version=V1_1):
    xen = get_profile(profile)
    endpoint = xen.guest(config, xen.boot(config))
    endpoint.version(version)
    endpoint.rxtx_map()
    return endpoint


@given(configs)
def test_422_v11_nil_count_is_the_number_of_bit15_descriptors(config):
    reply = ready_guest("xen-4.22", config).partition_info_get(NIL_UUID, COUNT)
    assert reply.ok and reply.w2 == secure_count(config)


@given(configs)
def test_422_one_unusable_line_per_bad_descriptor_and_header_at_most_once(config):
    lines = get_profile("xen-4.22").boot(config).lines
    keys = [line.key for line in lines]
    bad = config.count - secure_count(config)
    assert keys.count("sp_unusable") == bad
    assert keys.count("id_convention") == min(bad, 1)


@given(configs)
def test_421_header_repeats_once_per_bad_descriptor(config):
    keys = [line.key for line in get_profile("xen-4.21").boot(config).lines]
    bad = config.count - secure_count(config)
    assert keys.count("id_convention") == keys.count("sp_unusable") == bad


@settings(max_examples=50)
@given(configs, st.sampled_from([V1_0, V1_1, V1_2]), st.data())
def test_422_list_answers_never_contain_a_non_bit15_id(config, version, data):
    uuids = [NIL_UUID, UNKNOWN_UUID] + [PartitionInfo.unpack(e).uuid for e in config.entries()]
    uuid = data.draw(st.sampled_from(uuids))
    reply = ready_guest("xen-4.22", config, version).partition_info_get(uuid, 0)
    size = 8 if version == V1_0 else 24
    ids = [
        int.from_bytes(reply.rx[off : off + 2], "little") for off in range(0, len(reply.rx), size)
    ]
    own = {0x0001} if version >= V1_2 and uuid == NIL_UUID else set()
    assert all(is_secure_id(i) for i in set(ids) - own)
    assert len(ids) == (reply.w2 if reply.ok else 0)


@given(configs, st.sampled_from([NIL_UUID, UNKNOWN_UUID]) | st.uuids(), st.sampled_from([0, 1]))
def test_none_profile_answers_are_the_spmc_model(config, uuid, flags):
    reply = ready_guest("none", config).partition_info_get(uuid, flags)
    assert reply == spmc_partition_info_get(config, uuid, flags)
