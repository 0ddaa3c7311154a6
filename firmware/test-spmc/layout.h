/* Memory layout shared by entry.S, spmc.ld and spmc.c. hil/firmware/build.py reads the
 * window position back from the ELF symbols, so it is defined only here. */
#ifndef HIL_SPMC_LAYOUT_H
#define HIL_SPMC_LAYOUT_H

#define SPMC_BASE            0x0e100000 /* BL32_BASE on TF-A PLAT=qemu */
#define SPMC_SCENARIO_OFFSET 0x40000    /* the scenario blob window: SPMC_BASE + 256 KiB */
#define SPMC_SCENARIO_SIZE   0x2000
#define SPMC_MAX_CORES       8          /* PLATFORM_CORE_COUNT of TF-A PLAT=qemu */
#define SPMC_STACK_SHIFT     13         /* 8 KiB per core */

#endif
