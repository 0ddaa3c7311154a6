/* ffa_smc(struct ffa_regs *r): SMCCC call passing and returning x0..x7 through r.
 * x8..x17 may be clobbered by the callee under SMCCC 1.2; AAPCS64 already treats them
 * as caller-saved, so only the pointer needs to survive the call. */
	.section .text.ffa_smc, "ax"
	.global ffa_smc
	.type ffa_smc, %function
ffa_smc:
	str	x0, [sp, #-16]!
	ldp	x6, x7, [x0, #48]
	ldp	x4, x5, [x0, #32]
	ldp	x2, x3, [x0, #16]
	ldp	x0, x1, [x0]
	smc	#0
	ldr	x8, [sp], #16
	stp	x0, x1, [x8]
	stp	x2, x3, [x8, #16]
	stp	x4, x5, [x8, #32]
	stp	x6, x7, [x8, #48]
	ret
	.size ffa_smc, . - ffa_smc
