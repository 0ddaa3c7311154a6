"""What a board's device tree tells Xen when TF-A hands over to it directly (no bootloader):
Xen's command line and the dom0 module in /chosen (Xen's docs/misc/arm/device-tree/booting.txt
names the ``xen,xen-bootargs``, ``xen,dom0-bootargs`` and ``multiboot,kernel`` module). Shared
by the boards that boot Xen this way (QEMU virt, FVP, Juno)."""

from __future__ import annotations

from collections.abc import Sequence

from hil.xen.oracle import XenOptions

DOM0_ARGS = "hil-probe"  # the probe ignores its command line; a name shows it in Xen's log


def xen_command_line(board_args: Sequence[str], options: XenOptions) -> str:
    """Xen's command line: the board's own part, then what the oracle must know, taken from
    the bundle's XenOptions (never written per board)."""
    return " ".join((*board_args, *options.boot_args()))


def chosen_dts(
    xen_args: str, module_addr: int, module_size: int, dom0_args: str = DOM0_ARGS
) -> str:
    """A DTS fragment (to append to a board's DTS) with Xen's /chosen: its command line and
    dom0 as one ``multiboot,kernel`` module of ``module_size`` bytes at ``module_addr``."""
    return f"""
/ {{
	chosen {{
		#address-cells = <2>;
		#size-cells = <2>;
		xen,xen-bootargs = "{xen_args}";
		xen,dom0-bootargs = "{dom0_args}";
		module@{module_addr:x} {{
			compatible = "multiboot,kernel", "multiboot,module";
			reg = <{module_addr >> 32:#x} {module_addr & 0xFFFFFFFF:#x} 0x0 {module_size:#x}>;
		}};
	}};
}};
"""
