/* QEMU virt (secure=on, virtualization=on) with TF-A PLAT=qemu: the addresses the test SPMC and
 * the probe depend on. Every platform has one such file (firmware/platform/<name>/platform.h),
 * selected by PLATFORM=<name> in the Makefiles (hil.firmware.build.Platform). */
#ifndef HIL_PLATFORM_H
#define HIL_PLATFORM_H

#define HIL_PLATFORM_NAME     "qemu"
#define SPMC_BASE             0x0e100000 /* BL32_BASE of TF-A PLAT=qemu (SEC_DRAM) */
#define SPMC_MAX_CORES        8          /* PLATFORM_CORE_COUNT of TF-A PLAT=qemu */
#define SECURE_UART_BASE      0x09040000 /* the secure-world pl011 (UART1) */
#define PROBE_BASE            0x60000000 /* NS_IMAGE_OFFSET: TF-A loads BL33 here */
#define PROBE_ALT_BASE        0x48080000 /* where Xen places dom0: position-independence check */
#define NS_UART_BASE          0x09000000 /* the normal-world pl011 (UART0) */

#endif
