"""The FF-A ABI as data: function IDs, errors, versions, partition-info descriptors. No I/O."""

from hil.ffa.abi import ErrorCode, FfaVersion, FunctionId, error_word, signed_error
from hil.ffa.errors import FfaFormatError
from hil.ffa.partition import (
    DescriptorLayout,
    IdType,
    PartitionInfo,
    PartitionProperties,
    check_partition_id,
    is_secure_id,
    pack_descriptors,
    unpack_descriptors,
)
from hil.ffa.uuid import NIL_UUID, parse_uuid, uuid_from_words, uuid_to_regs64, uuid_to_words

__all__ = [
    "NIL_UUID",
    "DescriptorLayout",
    "ErrorCode",
    "FfaFormatError",
    "FfaVersion",
    "FunctionId",
    "IdType",
    "PartitionInfo",
    "PartitionProperties",
    "check_partition_id",
    "error_word",
    "is_secure_id",
    "pack_descriptors",
    "parse_uuid",
    "signed_error",
    "unpack_descriptors",
    "uuid_from_words",
    "uuid_to_regs64",
    "uuid_to_words",
]
