/* Polled PL011 transmit, enough for a log console on QEMU virt and Arm boards. */
#ifndef HIL_PL011_H
#define HIL_PL011_H

#include <stddef.h>
#include <stdint.h>

/* Enable the transmitter; the baud rate is left as firmware set it (QEMU ignores it). */
void pl011_init(uintptr_t base);
void pl011_write(uintptr_t base, const char *s, size_t n);

#endif
