/* Arm Juno r2 with TF-A PLAT=juno SPD=spmd SPMD_SPM_AT_SEL2=0 (2.12.1 + firmware/tf-a/
 * juno-spmd.patch): the addresses the test SPMC and the probe depend on. UNVERIFIED on a real
 * board (see README "Real hardware"). Selected by PLATFORM=juno. */
#ifndef HIL_PLATFORM_H
#define HIL_PLATFORM_H

#define HIL_PLATFORM_NAME     "juno"
#define SPMC_BASE             0xff200000 /* PLAT_ARM_SPMC_BASE of the patch: AP secure DRAM + 2 MB */
#define SPMC_MAX_CORES        8          /* Juno r2 has 6 (2 Cortex-A72 + 4 Cortex-A53) */
#define SECURE_UART_BASE      0x7ff70000 /* SOC_CSS_UART1 */
#define PROBE_BASE            0xe0000000 /* PLAT_ARM_NS_IMAGE_BASE of CSS platforms: BL33 */
#define PROBE_ALT_BASE        0x80080000 /* a dom0-like address: position-independence check */
#define NS_UART_BASE          0x7ff80000 /* SOC_CSS_UART0: TF-A's boot console */

#endif
