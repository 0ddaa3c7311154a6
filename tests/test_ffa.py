import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.ffa import (
    NIL_UUID,
    DescriptorLayout,
    ErrorCode,
    FfaFormatError,
    FfaVersion,
    FunctionId,
    IdType,
    PartitionInfo,
    PartitionProperties,
    is_secure_id,
    pack_descriptors,
    parse_uuid,
    unpack_descriptors,
    uuid_from_words,
    uuid_to_regs64,
    uuid_to_words,
)
from hil.ffa.abi import error_word, signed_error
from hil.ffa.reply import FfaReply

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
uuids = st.uuids(version=None) | st.just(NIL_UUID)
infos = st.builds(PartitionInfo, u16, u16, u32, uuids, uuids, u32, u32)


def test_uuid_register_words_match_the_spec_example():
    value = parse_uuid("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8")
    assert uuid_to_words(value) == (0xA4A3A2A1, 0xC2C1B2B1, 0xD4D3D2D1, 0xD8D7D6D5)
    assert uuid_to_regs64(value) == (0xC2C1B2B1A4A3A2A1, 0xD8D7D6D5D4D3D2D1)


@given(uuids)
def test_uuid_words_round_trip(value):
    assert uuid_from_words(*uuid_to_words(value)) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-uuid",
        "a1a2a3a4b1b2c1c2d1d2d3d4d5d6d7d8",
        "{a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8}",
    ],
)
def test_bad_uuid_text_is_refused(text):
    with pytest.raises(FfaFormatError, match="UUID"):
        parse_uuid(text)


def test_v1_1_descriptor_layout_is_bit_exact():
    info = PartitionInfo(0x8001, 2, 0x103, parse_uuid("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8"))
    assert info.pack().hex() == "0180020003010000a1a2a3a4b1b2c1c2d1d2d3d4d5d6d7d8"
    assert info.pack(DescriptorLayout.V1_0).hex() == "0180020003010000"


@pytest.mark.parametrize("layout", list(DescriptorLayout))
@given(info=infos)
def test_descriptor_pack_unpack_round_trip(layout, info):
    data = info.pack(layout)
    assert len(data) == layout.value
    back = PartitionInfo.unpack(data)
    assert back.pack(layout) == data
    assert (back.id, back.exec_ctx, back.properties) == (info.id, info.exec_ctx, info.properties)
    if layout is not DescriptorLayout.V1_0:
        assert back.uuid == info.uuid
    if layout is DescriptorLayout.V1_3:
        assert back == info


@given(st.lists(infos, max_size=8))
def test_descriptor_lists_round_trip(items):
    data = pack_descriptors(items, DescriptorLayout.V1_3)
    assert unpack_descriptors(data, DescriptorLayout.V1_3) == items


@pytest.mark.parametrize("size", [0, 7, 23, 25, 47, 4096])
def test_descriptor_of_wrong_length_is_refused(size):
    with pytest.raises(FfaFormatError, match="8, 24 or 48 bytes"):
        PartitionInfo.unpack(bytes(size))


def test_list_not_a_multiple_of_the_size_is_refused():
    with pytest.raises(FfaFormatError, match="whole number"):
        unpack_descriptors(bytes(30), DescriptorLayout.V1_1)


@pytest.mark.parametrize("pid", [-1, 0x10000, 1 << 20])
def test_id_outside_u16_is_refused(pid):
    with pytest.raises(FfaFormatError, match="u16"):
        PartitionInfo(pid)


@given(u16)
def test_bit_15_convention(pid):
    assert is_secure_id(pid) == (pid >= 0x8000)
    assert PartitionInfo(pid).is_secure == is_secure_id(pid)


def test_properties_named_view_and_id_type():
    info = PartitionInfo(0x8001, 1, 0x1C3 | (2 << 4))
    assert PartitionProperties.VM_CREATED in info.flags
    assert PartitionProperties.AARCH64 in info.flags
    assert PartitionProperties.VM_DESTROYED in info.flags
    assert PartitionProperties.NOTIFICATIONS not in info.flags
    assert info.id_type is IdType.DEPENDENT_SEPID


@given(st.integers(0, 0x7FFF), u16)
def test_version_word_round_trip(major, minor):
    version = FfaVersion(major, minor)
    assert FfaVersion.from_word(version.word) == version
    assert FfaVersion.parse(str(version)) == version


def test_version_words_and_order():
    assert FfaVersion.parse("1.2").word == 0x00010002
    assert FfaVersion(1, 0) < FfaVersion(1, 1) < FfaVersion(1, 2) < FfaVersion(2, 0)
    with pytest.raises(FfaFormatError):
        FfaVersion.from_word(0xFFFFFFFF)
    with pytest.raises(FfaFormatError, match=r"MAJOR\.MINOR"):
        FfaVersion.parse("1.2.3")


def test_function_ids_and_macro_names():
    assert FunctionId.PARTITION_INFO_GET == 0x84000068
    assert FunctionId.PARTITION_INFO_GET_REGS == 0xC400008B
    assert FunctionId.RXTX_MAP_64.macro == "FFA_RXTX_MAP_64"


@given(st.sampled_from(list(ErrorCode)))
def test_error_codes_travel_as_low_32_bits(code):
    reply = FfaReply.error(code)
    assert reply.w2 == error_word(code) == code & 0xFFFFFFFF
    assert signed_error(reply.w2) == code
    assert reply.error_code is code
    assert not reply.ok


def test_unknown_error_word_is_reported_as_int():
    assert FfaReply(FunctionId.ERROR, 0xFFFFFF00).error_code == -256
    assert FfaReply(FunctionId.SUCCESS_32).error_code is None
    assert uuid.UUID(int=0) == NIL_UUID
