"""Golden tests: expected values worked out by hand from shared/reference/xen-ffa-partinfo.md
(§2 init sequence, §3 guest ABI, one test or more per row of the §5 table)."""

import uuid

import pytest

from hil.errors import ConfigError
from hil.ffa import NIL_UUID, PartitionInfo
from hil.ffa.abi import V1_0, V1_1, V1_2, ErrorCode, FfaVersion, FunctionId
from hil.ffa.partition import DescriptorLayout
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import DEFAULT_SUPPORTED, SpmcConfig, spmc_partition_info_get
from hil.probe import UNKNOWN_UUID, ProbePlan
from hil.xen import oracle
from hil.xen.messages import Level
from hil.xen.oracle import PROFILES, XenOptions, expect, get_profile

UUID_A = uuid.UUID("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8")
UUID_B = uuid.UUID("b0b1b2b3-0000-4000-8000-000000000002")
GOOD = PartitionInfo(0x8001, 2, 0x103, UUID_A)
BAD = PartitionInfo(0x0042, 1, 0x003, UUID_B)
COUNT = 1


def spmc(*parts: PartitionInfo, **kwargs) -> SpmcConfig:
    return SpmcConfig.from_partitions(parts, **kwargs)


def boot(profile: str, config: SpmcConfig, **options):
    return get_profile(profile).boot(config, XenOptions(**options))


def guest(profile: str, config: SpmcConfig, version: FfaVersion = V1_1, **options):
    """A guest that negotiated ``version`` and mapped its RX buffer, like the probe does."""
    xen = get_profile(profile)
    opts = XenOptions(**options)
    endpoint = xen.guest(config, xen.boot(config, opts), opts)
    endpoint.version(version)
    assert endpoint.rxtx_map().ok
    return endpoint


def keys(result) -> list[str]:
    return [line.key for line in result.lines]


def texts(result) -> list[str]:
    return [line.text for line in result.lines]


# --- §5 bit-15 warning shape and repetition ---------------------------------------------------


def test_bit15_on_422_header_once_then_one_err_line_per_bad_sp():
    result = boot("xen-4.22", spmc(BAD, GOOD, PartitionInfo(0x0007)))
    bad = [line for line in result.lines if line.key in ("id_convention", "sp_unusable")]
    assert [(line.text, line.level) for line in bad] == [
        ("ffa: Firmware is not using bit 15 convention for IDs !!", Level.ERR),
        ("ffa: Secure partition with id 0x0042 cannot be used", Level.ERR),
        ("ffa: Secure partition with id 0x0007 cannot be used", Level.ERR),
    ]
    assert result.ffa_enabled
    assert result.cached_sps == (GOOD.pack(),)


@pytest.mark.parametrize("profile", ["xen-4.20", "xen-4.21"])
def test_bit15_before_cache_header_repeats_and_id_line_is_default_info(profile):
    result = boot(profile, spmc(BAD, GOOD, PartitionInfo(0x0007)))
    bad = [(ln.key, ln.level) for ln in result.lines if ln.key in ("id_convention", "sp_unusable")]
    assert bad == [("id_convention", Level.ERR), ("sp_unusable", Level.INFO)] * 2
    assert result.cached_sps is None


def test_one_sp_lacking_bit15_changes_the_v11_nil_count_between_421_and_422():
    config = spmc(GOOD, BAD)
    assert guest("xen-4.21", config).partition_info_get(NIL_UUID, COUNT) == FfaReply.success(2, 24)
    assert guest("xen-4.22", config).partition_info_get(NIL_UUID, COUNT) == FfaReply.success(1, 0)


# --- §5 init size/count trouble ---------------------------------------------------------------


@pytest.mark.parametrize("fpi_size", [8, 4096])
def test_422_bad_entry_size_fails_the_cache_and_disables_ffa(fpi_size):
    result = boot("xen-4.22", SpmcConfig(b"", 0, fpi_size))
    assert keys(result)[-2:] == ["cache_failed", "no_firmware"]
    assert not result.ffa_enabled
    assert result.cached_sps == ()
    endpoint = get_profile("xen-4.22").guest(SpmcConfig(b"", 0, fpi_size), result)
    assert endpoint.version(V1_1) == 0xFFFFFFFF
    assert endpoint.partition_info_get(NIL_UUID, COUNT).w0 == 0xFFFFFFFF


def test_422_count_larger_than_a_page_of_entries_fails_the_cache():
    # 4096 / 2048 = 2 entries fit; 3 do not (count < 64 so only the cache check trips).
    assert "cache_failed" in keys(boot("xen-4.22", SpmcConfig(b"", 3, 2048)))
    assert "cache_failed" not in keys(boot("xen-4.22", SpmcConfig(b"", 2, 2048)))


@pytest.mark.parametrize("profile", ["xen-4.20", "xen-4.21"])
def test_pre_cache_small_size_is_reported_by_size_and_large_size_passes_init(profile):
    small = boot(profile, SpmcConfig(b"", 0, 8))
    assert "ffa: partition info size invalid: 8" in texts(small)
    assert not small.ffa_enabled
    large = boot(profile, SpmcConfig(b"", 0, 4096))
    assert large.ffa_enabled
    # ... and the guest gets NOT_SUPPORTED at runtime instead (4.21) for a size >= 4096.
    if profile == "xen-4.21":
        reply = guest(profile, SpmcConfig(b"", 0, 4096)).partition_info_get(NIL_UUID, 0)
        assert reply.error_code is ErrorCode.NOT_SUPPORTED


def test_zero_sps_keeps_ffa_up_on_every_profile():
    for name in PROFILES:
        result = boot(name, spmc())
        assert result.ffa_enabled, name
        assert "no_firmware" not in keys(result)


def test_v13_list_is_cached_whole_and_guests_get_24_bytes():
    part = PartitionInfo(0x8003, 1, 0x3, UUID_A, UUID_B, 0x10003)
    config = spmc(part, layout=DescriptorLayout.V1_3)
    result = boot("xen-4.22", config)
    assert result.cached_sps == (part.pack(DescriptorLayout.V1_3),)
    reply = guest("xen-4.22", config).partition_info_get(NIL_UUID, 0)
    assert (reply.w2, reply.w3, reply.rx) == (1, 24, part.pack(DescriptorLayout.V1_1))


# --- §5 too many SPs ----------------------------------------------------------------------------


def many(n: int) -> SpmcConfig:
    return spmc(*(PartitionInfo(0x8001 + i) for i in range(n)))


@pytest.mark.parametrize("profile", ["xen-4.21", "xen-4.22"])
def test_63_sps_are_accepted_and_64_are_too_many(profile):
    assert boot(profile, many(63)).ffa_enabled
    result = boot(profile, many(64))
    assert "ffa: More SPs than the maximum supported: 64 - 64" in texts(result)
    assert keys(result)[-1] == "no_firmware"


def test_420_accepts_64_sps_and_rejects_only_impossible_counts():
    assert boot("xen-4.20", many(64)).ffa_enabled
    result = boot("xen-4.20", SpmcConfig(b"", 0xFFFF, 24))
    assert "ffa: Impossible number of SPs: 65535" in texts(result)


# --- §5 SPMC traffic after boot -----------------------------------------------------------------


def test_422_guest_answers_come_from_the_boot_cache_not_the_spmc():
    at_boot, later = spmc(GOOD), spmc(GOOD, PartitionInfo(0x8002, 1, 0, UUID_B))
    xen = get_profile("xen-4.22")
    booted = xen.boot(at_boot)
    for config in (at_boot, later):
        endpoint = xen.guest(config, booted)
        endpoint.version(V1_1)
        endpoint.rxtx_map()
        assert endpoint.partition_info_get(NIL_UUID, COUNT).w2 == 1
        assert endpoint.partition_info_get(UUID_B, 0).error_code is ErrorCode.INVALID_PARAMETERS


def test_421_guest_answers_follow_the_spmc_live():
    at_boot, later = spmc(GOOD), spmc(GOOD, PartitionInfo(0x8002, 1, 0, UUID_B))
    xen = get_profile("xen-4.21")
    endpoint = xen.guest(later, xen.boot(at_boot))
    assert endpoint.partition_info_get(NIL_UUID, COUNT).w2 == 2


# --- §5 count for Nil / non-Nil no match / UUID zeroing / w3 / own entry ------------------------


def test_non_nil_uuid_without_match():
    config = spmc(GOOD)
    for profile in ("xen-4.21", "xen-4.22"):
        for flags in (COUNT, 0):
            reply = guest(profile, config).partition_info_get(UNKNOWN_UUID, flags)
            assert reply.error_code is ErrorCode.INVALID_PARAMETERS, (profile, flags)


def test_non_nil_query_zeroes_uuid_on_422_only():
    config = spmc(GOOD)
    zeroed = GOOD.pack()[:8] + bytes(16)
    assert guest("xen-4.22", config).partition_info_get(UUID_A, 0).rx == zeroed
    assert guest("xen-4.21", config).partition_info_get(UUID_A, 0).rx == GOOD.pack()


def test_w3_in_count_mode_and_for_v10_guests():
    config = spmc(GOOD)
    assert guest("xen-4.21", config).partition_info_get(NIL_UUID, COUNT).w3 == 24
    assert guest("xen-4.22", config).partition_info_get(NIL_UUID, COUNT).w3 == 0
    v10_421 = guest("xen-4.21", config, V1_0).partition_info_get(NIL_UUID, 0)
    v10_422 = guest("xen-4.22", config, V1_0).partition_info_get(NIL_UUID, 0)
    assert (v10_421.w2, v10_421.w3, v10_421.rx) == (1, 8, GOOD.pack(DescriptorLayout.V1_0))
    assert (v10_422.w2, v10_422.w3, v10_422.rx) == (1, 0, GOOD.pack(DescriptorLayout.V1_0))
    for profile in ("xen-4.21", "xen-4.22"):
        reply = guest(profile, config, V1_0).partition_info_get(NIL_UUID, COUNT)
        assert reply.error_code is ErrorCode.INVALID_PARAMETERS


def test_v12_guest_on_422_gets_its_own_entry_and_one_more_in_count_mode():
    config = spmc(GOOD, BAD)
    endpoint = guest("xen-4.22", config, V1_2, dom0_vcpus=4)
    assert endpoint.partition_info_get(NIL_UUID, COUNT) == FfaReply.success(2, 0)
    reply = endpoint.partition_info_get(NIL_UUID, 0)
    own = PartitionInfo(0x0001, 4, 0x10E).pack()
    assert reply == FfaReply.success(2, 24, GOOD.pack() + own)
    # never for a non-Nil query
    assert guest("xen-4.22", config, V1_2).partition_info_get(UUID_A, COUNT).w2 == 1


def test_v12_guest_on_421_is_v11_and_never_listed():
    endpoint = get_profile("xen-4.21").guest(spmc(GOOD), boot("xen-4.21", spmc(GOOD)))
    assert endpoint.version(V1_2) == 0x00010001
    endpoint.rxtx_map()
    assert endpoint.partition_info_get(NIL_UUID, 0).w2 == 1


# --- §5 FFA_VERSION answers, "does not support" level, Cannot retrieve ------------------------


@pytest.mark.parametrize(
    ("profile", "answer"), [("xen-4.22", 0x00010002), ("xen-4.21", 0x00010001)]
)
@pytest.mark.parametrize("requested", [V1_0, V1_1, V1_2, FfaVersion(1, 3), FfaVersion(2, 0)])
def test_ffa_version_answer_is_the_mediator_version(profile, answer, requested):
    endpoint = get_profile(profile).guest(spmc(GOOD), boot(profile, spmc(GOOD)))
    assert endpoint.version(requested) == answer


def test_does_not_support_level_per_profile():
    config = spmc(GOOD)
    levels = {
        name: {ln.level for ln in boot(name, config).lines if ln.key == "abi_unsupported"}
        for name in ("xen-4.20", "xen-4.21", "xen-4.22")
    }
    assert levels == {
        "xen-4.20": {Level.INFO},
        "xen-4.21": {Level.INFO},
        "xen-4.22": {Level.WARNING},
    }


def test_features_walk_order_and_list_per_release():
    nothing = spmc(supported=())  # every probe fails
    walked = {
        name: [
            ln.text.rsplit(" ", 1)[1]
            for ln in boot(name, nothing).lines
            if ln.key == "abi_unsupported"
        ]
        for name in ("xen-4.21", "xen-4.22")
    }
    assert walked["xen-4.21"][10] == "FFA_MEM_SHARE_32"
    assert "FFA_RX_ACQUIRE" not in walked["xen-4.21"] and "FFA_RUN" not in walked["xen-4.21"]
    assert walked["xen-4.22"][7] == "FFA_RX_ACQUIRE"
    assert walked["xen-4.22"][-2:] == ["FFA_MSG_SEND_DIRECT_REQ2", "FFA_RUN"]
    assert "FFA_MEM_SHARE_32" not in walked["xen-4.22"]
    # nothing usable: RXTX map is required
    assert keys(boot("xen-4.22", nothing))[-2:] == ["rxtx_init_failed", "no_firmware"]


def test_cannot_retrieve_version_variants(monkeypatch):
    # Not an answer the test SPMC gives (it answers FFA_VERSION whatever it reports): an SPMC
    # that returns NOT_SUPPORTED as a 32-bit w0.
    monkeypatch.setattr(oracle, "spmc_version_x0", lambda _: 0xFFFFFFFF)
    assert "ffa: Cannot retrieve the FFA version" in texts(boot("xen-4.22", spmc()))
    # 4.21 compares all of x0 with -1: a 32-bit NOT_SUPPORTED reads as a version.
    assert "ffa: Incompatible firmware version 32767.65535" in texts(boot("xen-4.21", spmc()))
    # An SPMC that sign-extends the error hits the gprintk variant with the vCPU prefix.
    monkeypatch.setattr(oracle, "spmc_version_x0", lambda _: (1 << 64) - 1)
    assert "d[IDLE]v0 Cannot retrieve the FFA version" in texts(boot("xen-4.21", spmc()))
    assert "ffa: Cannot retrieve the FFA version" in texts(boot("xen-4.22", spmc()))


# What real Xen 4.22.0 printed for the test SPMC reporting FFA_VERSION, FFA_FEATURES or
# FFA_RX_RELEASE as not supported through FFA_FEATURES (hil run --lab real-xen.toml, scenarios
# with one SP and `unsupported = [...]`, 2026-12-02): the SPMC (and TF-A's SPMD) still answer
# those calls, so Xen goes on, says nothing about its release, and the guest sees the SP.
_NOT_REPORTED = [
    "NOTIFICATION_BITMAP_CREATE", "NOTIFICATION_BITMAP_DESTROY", "NOTIFICATION_INFO_GET_64",
    "NOTIFICATION_GET", "RX_ACQUIRE", "MEM_SHARE_64", "MEM_RECLAIM", "MSG_SEND2",
    "MSG_SEND_DIRECT_REQ2", "RUN",
]  # fmt: skip


@pytest.mark.parametrize(
    ("fid", "after"),
    [
        (FunctionId.VERSION, None),
        (FunctionId.FEATURES, None),
        (FunctionId.RX_RELEASE, "RX_ACQUIRE"),
    ],
)
def test_an_abi_the_test_spmc_reports_unsupported_is_still_answered(fid, after):
    names = list(_NOT_REPORTED)
    names.insert(names.index(after) + 1 if after else 0, fid.name)
    real_xen = [
        "ARM FF-A Mediator version 1.2",
        "ARM FF-A Firmware version 1.1",
        *(f"ARM FF-A Firmware does not support FFA_{name}" for name in names),
        "Using TEE mediator for FF-A",
    ]
    config = spmc(GOOD, supported=tuple(f for f in DEFAULT_SUPPORTED if f != fid))
    assert texts(boot("xen-4.22", config)) == real_xen
    plan = ProbePlan.standard(V1_1, [UUID_A])
    reported = expect("xen-4.22", config, plan).transcript
    assert reported == expect("xen-4.22", spmc(GOOD), plan).transcript


@pytest.mark.parametrize(
    ("version", "line"),
    [
        (V1_0, "ffa: Incompatible firmware version 1.0"),
        (FfaVersion(2, 1), "ffa: Incompatible firmware version 2.1"),
    ],
)
def test_incompatible_firmware_versions(version, line):
    result = boot("xen-4.22", spmc(version=version))
    assert line in texts(result) and not result.ffa_enabled


# --- the rest of the §2 init sequence ----------------------------------------------------------


def test_good_422_boot_sequence():
    supported = tuple(int(f) for f in FunctionId)  # an SPMC that supports everything
    result = boot("xen-4.22", spmc(GOOD, version=FfaVersion(1, 2), supported=supported))
    assert texts(result) == [
        "ARM FF-A Mediator version 1.2",
        "ARM FF-A Firmware version 1.2",
        "Using TEE mediator for FF-A",
    ]


def test_tee_cmdline_selection_and_panic():
    assert keys(boot("xen-4.22", spmc(), tee_cmdline="ffa"))[0] == "tee_selected"
    assert keys(boot("xen-4.20", spmc(), tee_cmdline="ffa"))[0] == "mediator_version"
    failing = boot("xen-4.21", spmc(), tee_cmdline="ffa", smccc_version=0x10001)
    assert texts(failing)[1:] == [
        "ARM FF-A Mediator version 1.1",
        "ffa: unsupported SMCCC version 0x10001 (need at least 0x10002)",
        "ARM FF-A No firmware support",
        "Panic on CPU 0:",
        "TEE mediator ffa from command line probe failed",
    ]


def test_msg_send2_without_rx_acquire_workaround_on_422_only():
    config = spmc(supported=(*DEFAULT_SUPPORTED, int(FunctionId.MSG_SEND2)))
    assert keys(boot("xen-4.22", config))[-3:-1] == [
        "send2_without_acquire",
        "rx_acquire_workaround",
    ]
    assert "send2_without_acquire" not in keys(boot("xen-4.21", config))


@pytest.mark.parametrize(
    "missing", [FunctionId.PARTITION_INFO_GET, FunctionId.MSG_SEND_DIRECT_REQ_32]
)
@pytest.mark.parametrize("profile", ["xen-4.21", "xen-4.22"])
def test_partinfo_requirements_fail_silently(profile, missing):
    config = spmc(GOOD, supported=tuple(f for f in DEFAULT_SUPPORTED if f != missing))
    result = boot(profile, config)
    abi = [ln.text for ln in result.lines if ln.key == "abi_unsupported"]
    assert f"ARM FF-A Firmware does not support {missing.macro}" in abi
    assert keys(result)[-1] == "no_firmware"
    assert not {"sp_list_failed", "cache_failed"} & set(keys(result))


def test_vm_to_vm_keeps_mediator_without_firmware():
    result = boot("xen-4.22", spmc(), vm_to_vm=True, smccc_version=0x10000)
    assert keys(result)[-4:] == ["no_firmware", "vm_to_vm_insecure", "vm_to_vm_only", "tee_using"]
    assert not result.ffa_enabled
    endpoint = guest("xen-4.22", spmc(), vm_to_vm=True, smccc_version=0x10000)
    assert endpoint.partition_info_get(UUID_A, COUNT) == FfaReply.success(0, 0)
    # the insecure line only appears when the firmware probe failed
    assert "vm_to_vm_insecure" not in keys(boot("xen-4.22", spmc(GOOD), vm_to_vm=True))


def test_422_rx_release_failure_is_a_warning_not_a_failure(monkeypatch):
    # An SPMC that refuses Xen's release (the test SPMC releases a buffer its list call filled).
    monkeypatch.setattr(oracle, "spmc_rx_release", lambda: FfaReply.error(ErrorCode.NOT_SUPPORTED))
    result = boot("xen-4.22", spmc(GOOD))
    release = [ln for ln in result.lines if ln.key == "rx_release_failed"]
    assert [(ln.text, ln.level) for ln in release] == [
        ("ffa: Error releasing SPMC RX buffer: -1", Level.WARNING)
    ]
    assert result.ffa_enabled


# --- 4.22 guest-level details --------------------------------------------------------------------


def test_422_guest_must_call_version_first():
    xen = get_profile("xen-4.22")
    endpoint = xen.guest(spmc(GOOD), xen.boot(spmc(GOOD)))
    assert endpoint.rxtx_map().error_code is ErrorCode.NOT_SUPPORTED
    assert endpoint.partition_info_get(NIL_UUID, 0).error_code is ErrorCode.NOT_SUPPORTED
    # ... and on 4.21 there is no such gate
    xen = get_profile("xen-4.21")
    assert xen.guest(spmc(GOOD), xen.boot(spmc(GOOD))).rxtx_map().ok


@pytest.mark.parametrize("profile", ["xen-4.20", "xen-4.21", "xen-4.22"])
def test_rx_buffer_ownership(profile):
    xen = get_profile(profile)
    endpoint = xen.guest(spmc(GOOD), xen.boot(spmc(GOOD)))
    endpoint.version(V1_1)
    assert endpoint.partition_info_get(NIL_UUID, 0).error_code is ErrorCode.DENIED
    endpoint.rxtx_map()
    assert endpoint.partition_info_get(NIL_UUID, 0).ok
    assert endpoint.partition_info_get(NIL_UUID, 0).error_code is ErrorCode.BUSY
    assert endpoint.partition_info_get(NIL_UUID, COUNT).ok  # count mode needs no RX buffer
    assert endpoint.rx_release().ok
    assert endpoint.rx_release().error_code is ErrorCode.DENIED
    assert endpoint.partition_info_get(NIL_UUID, 0).ok
    # a failed list query hands the buffer back
    endpoint.rx_release()
    assert not endpoint.partition_info_get(UNKNOWN_UUID, 0).ok
    assert endpoint.partition_info_get(NIL_UUID, 0).ok


# --- 4.20 specifics ------------------------------------------------------------------------------


def test_420_count_mode_only_for_v11_guests_and_copies_dst_size_bytes():
    config = spmc(GOOD, BAD)
    assert guest("xen-4.20", config, V1_2).partition_info_get(NIL_UUID, COUNT) == FfaReply.success(
        2, 24
    )
    v10 = guest("xen-4.20", config, V1_0)
    assert v10.partition_info_get(NIL_UUID, COUNT).error_code is ErrorCode.INVALID_PARAMETERS
    # The SPMC switches to 8-byte entries after boot (init would reject them): 4.20 copies
    # 24 bytes from each entry's start, 4.21 copies 8 and pads with zeros.
    small = SpmcConfig(GOOD.pack()[:8] + BAD.pack()[:8], 2, 8)
    rx = {}
    for profile in ("xen-4.20", "xen-4.21"):
        xen = get_profile(profile)
        endpoint = xen.guest(small, xen.boot(config))
        endpoint.version(V1_1)
        endpoint.rxtx_map()
        rx[profile] = endpoint.partition_info_get(NIL_UUID, 0).rx
    assert rx == {
        "xen-4.20": GOOD.pack()[:8] + BAD.pack()[:8] + bytes(8),
        "xen-4.21": GOOD.pack()[:8] + bytes(16),
    }


# --- none profile, registry, expect() -----------------------------------------------------------


def test_none_profile_is_the_spmc():
    config = spmc(GOOD, BAD)
    result = boot("none", config)
    assert (result.lines, result.ffa_enabled, result.cached_sps) == ((), True, None)
    endpoint = guest("none", config)
    for query in [(NIL_UUID, COUNT), (NIL_UUID, 0), (UUID_B, 0), (UNKNOWN_UUID, COUNT)]:
        assert endpoint.partition_info_get(*query) == spmc_partition_info_get(config, *query)


def test_unknown_profile_names_itself_and_the_known_ones():
    with pytest.raises(ConfigError, match=r"'xen-9\.9'.*none, xen-4\.20, xen-4\.21, xen-4\.22"):
        get_profile("xen-9.9")


def test_expect_end_to_end_with_the_standard_plan():
    config = spmc(GOOD, BAD)
    plan = ProbePlan.standard(V1_2, [UUID_A, UUID_B])
    result = expect("xen-4.22", config, plan)
    t = result.transcript
    assert t.complete and result.profile == "xen-4.22"
    assert [w0 for _, w0 in t.versions] == [0x00010002] * 4
    answers = {(a.query.uuid, a.query.count_only): a.reply for a in t.partinfo}
    assert answers[(NIL_UUID, True)] == FfaReply.success(2, 0)  # GOOD + own entry
    assert answers[(UUID_A, False)].rx == GOOD.pack()[:8] + bytes(16)
    assert answers[(UUID_B, True)].error_code is ErrorCode.INVALID_PARAMETERS  # BAD was dropped
    assert all(a.release is not None and a.release.ok for a in t.partinfo if a.reply.rx)
    disabled = expect("xen-4.22", spmc(GOOD, version=V1_0), plan)
    assert [w0 for _, w0 in disabled.transcript.versions] == [0xFFFFFFFF] * 4


# --- confirmed on real Xen: RX_ACQUIRE makes 4.22 register a guest's buffers with the SPMC -------


@pytest.mark.parametrize("extra", [FunctionId.MSG_SEND2, FunctionId.RX_ACQUIRE])
def test_with_rx_acquire_422_forwards_the_guests_rxtx_map_and_the_test_spmc_denies_it(extra):
    supported = tuple(int(f) for f in (*DEFAULT_SUPPORTED, extra))
    config = spmc(GOOD, supported=supported)
    xen = get_profile("xen-4.22")
    result = xen.boot(config)
    assert FunctionId.RX_ACQUIRE in result.firmware_abis
    endpoint = xen.guest(config, result)
    endpoint.version(V1_1)
    assert endpoint.rxtx_map().error_code is ErrorCode.DENIED
    # Count queries need no RX buffer; list queries find none mapped.
    assert endpoint.partition_info_get(NIL_UUID, COUNT) == FfaReply.success(1, 0)
    assert endpoint.partition_info_get(NIL_UUID, 0).error_code is ErrorCode.DENIED
    # Before the SP cache Xen never forwarded the map.
    assert guest("xen-4.21", config).partition_info_get(NIL_UUID, 0).ok


def test_without_rx_acquire_the_guests_buffers_stay_with_xen():
    assert not boot("xen-4.22", spmc(GOOD)).firmware_abis & {FunctionId.RX_ACQUIRE}
    assert guest("xen-4.22", spmc(GOOD)).partition_info_get(NIL_UUID, 0).ok
