/* FF-A function IDs, error codes and the register block both images exchange with firmware. */
#ifndef HIL_FFA_H
#define HIL_FFA_H

#include <stdint.h>

#define FFA_ERROR               0x84000060u
#define FFA_SUCCESS_32          0x84000061u
#define FFA_VERSION             0x84000063u
#define FFA_FEATURES            0x84000064u
#define FFA_RX_RELEASE          0x84000065u
#define FFA_RXTX_MAP_32         0x84000066u
#define FFA_RXTX_MAP_64         0xC4000066u
#define FFA_RXTX_UNMAP          0x84000067u
#define FFA_PARTITION_INFO_GET  0x84000068u
#define FFA_ID_GET              0x84000069u
#define FFA_MSG_WAIT            0x8400006Bu
#define FFA_MSG_SEND_DIRECT_REQ_32  0x8400006Fu
#define FFA_MSG_SEND_DIRECT_RESP_32 0x84000070u

#define FFA_RET_NOT_SUPPORTED       (-1)
#define FFA_RET_INVALID_PARAMETERS  (-2)
#define FFA_RET_BUSY                (-4)
#define FFA_RET_DENIED              (-6)

#define FFA_PAGE_SIZE 4096u

/* x0..x7 of an SMC: arguments going in, results coming back. */
struct ffa_regs {
	uint64_t x[8];
};

/* Issue `smc #0` with r->x[0..7] and store the returned x0..x7 back into r. */
void ffa_smc(struct ffa_regs *r);

#endif
