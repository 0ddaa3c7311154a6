"""The SPMC core manifest TF-A's SPMD reads (TOS_FW_CONFIG), as DTS text."""

from __future__ import annotations

SPMC_ID = 0x8000
SPMC_LOAD_ADDRESS = 0x0E100000
SPMC_BINARY_SIZE = 0x100000


def manifest_version(ffa_version: int) -> tuple[int, int]:
    """The (major, minor) to declare for a scenario whose SPMC answers ``ffa_version``.

    TF-A 2.12's SPMD accepts only 1.0..1.2 and answers a normal-world FFA_VERSION itself when
    the manifest says 1.0, so any other version (1.0 included) is declared as 1.1: the SPMD then
    forwards every FFA_VERSION to the test SPMC, which serves the crafted word unchanged.
    """
    major, minor = (ffa_version >> 16) & 0x7FFF, ffa_version & 0xFFFF
    if major == 1 and minor in (1, 2):
        return major, minor
    return 1, 1


def manifest_dts(ffa_version: int, load_address: int = SPMC_LOAD_ADDRESS) -> str:
    """DTS source of the SPMC manifest for a test SPMC answering ``ffa_version``, loaded at
    ``load_address`` (the platform's BL32 base)."""
    major, minor = manifest_version(ffa_version)
    return f"""/dts-v1/;
/ {{
	compatible = "arm,ffa-core-manifest-1.0";
	#address-cells = <2>;
	#size-cells = <1>;
	attribute {{
		spmc_id = <{SPMC_ID:#x}>;
		maj_ver = <{major:#x}>;
		min_ver = <{minor:#x}>;
		exec_state = <0x0>;
		load_address = <0x0 {load_address:#010x}>;
		entrypoint = <0x0 {load_address:#010x}>;
		binary_size = <{SPMC_BINARY_SIZE:#x}>;
	}};
}};
"""
