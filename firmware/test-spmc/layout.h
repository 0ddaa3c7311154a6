/* Memory layout shared by entry.S, spmc.ld and spmc.c. hil/firmware/build.py reads the
 * window position back from the ELF symbols, so it is defined only here. */
#ifndef HIL_SPMC_LAYOUT_H
#define HIL_SPMC_LAYOUT_H

#include "platform.h" /* SPMC_BASE, SPMC_MAX_CORES, SECURE_UART_BASE of the platform built for */

#define SPMC_SCENARIO_OFFSET 0x40000    /* the scenario blob window: SPMC_BASE + 256 KiB */
#define SPMC_SCENARIO_SIZE   0x2000
#define SPMC_STACK_SHIFT     13         /* 8 KiB per core */

#endif
