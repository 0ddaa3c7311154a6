/* S-EL1 entry, MMU off. The SPMD enters here at cold boot and again for every core it powers
 * on, with x0 = SPMC manifest address and x4 = linear core id. Each core gets its own stack. */
#include "layout.h"

	.section .text.entry, "ax"
	.global _start
_start:
	cmp	x4, #SPMC_MAX_CORES
	b.hs	park
	adrp	x9, __stacks_start
	add	x9, x9, :lo12:__stacks_start
	add	x10, x4, #1
	lsl	x10, x10, #SPMC_STACK_SHIFT
	add	sp, x9, x10
	mov	x1, x4
	bl	spmc_main
park:
	wfe
	b	park
