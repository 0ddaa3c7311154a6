"""The FF-A endpoint a probe sees when it runs as TF-A's BL33 with no hypervisor: the SPMD
forwarding every call to the test SPMC (firmware/test-spmc/README.md), as a model.

Predicts the probe transcript of a QEMU boot without Xen, so the QEMU tier checks the C SPMC
against :func:`hil.ffa.spmc.spmc_partition_info_get`."""

from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass

from hil.ffa.abi import ErrorCode, FfaVersion
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import COUNT_FLAG, SpmcConfig, spmc_partition_info_get, spmc_rxtx_map


@dataclass
class DirectSpmcEndpoint:
    """SPMD + test SPMC as seen from the normal world, with the SPMC's RX/TX state."""

    config: SpmcConfig
    mapped: bool = False
    rx_full: bool = False

    def version(self, requested: FfaVersion) -> int:
        # The SPMD asks the SPMC through a framework message; the SPMC answers its crafted word.
        return self.config.version.word

    def rxtx_map(self) -> FfaReply:
        reply = spmc_rxtx_map(self.mapped, 1)  # the probe maps one page
        if reply.ok:
            self.mapped, self.rx_full = True, False
        return reply

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        if not flags & COUNT_FLAG:
            if not self.mapped:
                return FfaReply.error(ErrorCode.DENIED)
            if self.rx_full:
                return FfaReply.error(ErrorCode.BUSY)
        reply = spmc_partition_info_get(self.config, uuid, flags)
        if reply.ok and not flags & COUNT_FLAG:
            self.rx_full = True
        return reply

    def rx_release(self) -> FfaReply:
        if not self.rx_full:
            return FfaReply.error(ErrorCode.DENIED)
        self.rx_full = False
        return FfaReply.success()
