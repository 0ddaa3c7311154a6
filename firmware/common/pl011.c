#include "pl011.h"

#define UARTDR   0x00
#define UARTFR   0x18
#define UARTCR   0x30
#define FR_TXFF  (1u << 5)
#define CR_UARTEN (1u << 0)
#define CR_TXE   (1u << 8)

static inline volatile uint32_t *reg(uintptr_t base, uintptr_t off)
{
	return (volatile uint32_t *)(base + off);
}

void pl011_init(uintptr_t base)
{
	*reg(base, UARTCR) |= CR_UARTEN | CR_TXE;
}

void pl011_write(uintptr_t base, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		while (*reg(base, UARTFR) & FR_TXFF)
			;
		*reg(base, UARTDR) = (uint8_t)s[i];
	}
}
