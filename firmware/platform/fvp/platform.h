/* Arm FVP Base RevC-2xAEMvA with TF-A PLAT=fvp SPD=spmd SPMD_SPM_AT_SEL2=0: the addresses the
 * test SPMC and the probe depend on (TF-A 2.12.1 plat/arm/board/fvp/include/platform_def.h,
 * include/plat/arm/board/common/v2m_def.h), selected by PLATFORM=fvp. */
#ifndef HIL_PLATFORM_H
#define HIL_PLATFORM_H

#define HIL_PLATFORM_NAME     "fvp"
#define SPMC_BASE             0x06000000 /* PLAT_ARM_SPMC_BASE = trusted DRAM base (2 MB) */
#define SPMC_MAX_CORES        8          /* 2 clusters x 4 cores (FVP_CLUSTER_COUNT = 2) */
#define SECURE_UART_BASE      0x1c0b0000 /* V2M_IOFPGA_UART2: the secure payload's UART */
#define PROBE_BASE            0x84000000 /* PRELOADED_BL33_BASE hil builds TF-A with */
#define PROBE_ALT_BASE        0x80080000 /* a dom0-like address: position-independence check */
#define NS_UART_BASE          0x1c090000 /* V2M_IOFPGA_UART0: boot console, Xen, the probe */

#endif
