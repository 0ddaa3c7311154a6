/* Memory layout shared by head.S and probe.ld. hil/firmware/build.py reads the plan window
 * position back from the ELF symbols, so it is defined only here. */
#ifndef HIL_PROBE_LAYOUT_H
#define HIL_PROBE_LAYOUT_H

/* Link address PROBE_BASE = the platform's BL33 address (platform.h). The code only uses
 * PC-relative addressing, so the image also runs where Xen places dom0 (PROBE_ALT_BASE: the
 * Makefile checks this). */
#include "platform.h"

#define PROBE_PLAN_OFFSET 0x10000    /* the probe plan window: image start + 64 KiB */
#define PROBE_PLAN_SIZE   0x1000
#define PROBE_STACK_SIZE  0x4000

#endif
