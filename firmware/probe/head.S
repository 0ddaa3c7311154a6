/* arm64 Image header (so Xen accepts the image as dom0 and TF-A as a Linux-style BL33),
 * then: clear .bss, set up the stack, run probe_main, sleep. MMU stays off throughout. */
	.section .text.head, "ax"
	.global _start
_start:
	b	entry			/* code0 */
	.word	0			/* code1 */
	.quad	0x80000			/* text_offset */
	.quad	__image_size		/* image_size: includes .bss and the stack */
	.quad	0xa			/* flags: little-endian, 4K pages, anywhere in RAM */
	.quad	0, 0, 0			/* res2..res4 */
	.ascii	"ARM\x64"		/* magic */
	.word	0			/* res5 */

entry:
	adrp	x0, __bss_start
	add	x0, x0, :lo12:__bss_start
	adrp	x1, __bss_end
	add	x1, x1, :lo12:__bss_end
1:	cmp	x0, x1
	b.hs	2f
	str	xzr, [x0], #8
	b	1b
2:	adrp	x0, __stack_top
	add	x0, x0, :lo12:__stack_top
	mov	sp, x0
	bl	probe_main
3:	wfi
	b	3b

/* xen_console_write(buf, len): HYPERVISOR_console_io(CONSOLEIO_write, len, buf). */
	.global xen_console_write
	.type xen_console_write, %function
xen_console_write:
	mov	x2, x0
	mov	x0, #0
	mov	x16, #18
	hvc	#0xEA1
	ret
	.size xen_console_write, . - xen_console_write
