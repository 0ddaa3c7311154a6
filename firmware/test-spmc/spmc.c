/*
 * HIL test SPMC: answers FF-A calls forwarded by TF-A's SPMD from a crafted scenario blob,
 * so tests can feed Xen's FF-A mediator exactly the partition descriptors they want,
 * including malformed ones. Semantics are documented in README.md; hil/ffa/spmc.py models
 * them and must change together with this file.
 *
 * Calls are assumed to arrive one at a time (Xen and the probe issue them serially): the
 * state below is shared by all cores without a lock, since exclusives are unreliable on
 * Device memory with the MMU off.
 */
#include "ffa.h"
#include "lib.h"
#include "pl011.h"
#include "platform.h"
#include "scenario.h"

#define SPMC_ID          0x8000u

/* Framework messages (DIRECT_REQ/RESP w2, bit 31 set). */
#define FWK_VM_CREATED_REQ    0x80000004u
#define FWK_VM_CREATED_RESP   0x80000005u
#define FWK_VM_DESTROYED_REQ  0x80000006u
#define FWK_VM_DESTROYED_RESP 0x80000007u
#define FWK_VERSION_REQ       0x80000008u
#define FWK_VERSION_RESP      0x80000009u

#define FFA_FEATURE_FID_BIT   (1u << 31) /* FFA_FEATURES w1: function ID vs feature ID */
#define PARTINFO_FLAG_COUNT   1u
#define FPI_UUID_OFFSET       8u
#define FPI_MIN_SIZE_WITH_UUID 24u

extern const uint8_t __scenario_start[], __scenario_end[];
extern uint8_t __bss_start[], __bss_end[];

/* In .data, not .bss: the first core to enter clears .bss and then this flag. */
static volatile uint32_t cold_boot_pending = 1;

static struct scenario sc;

/* The caller's RX/TX buffers, registered by FFA_RXTX_MAP. */
static struct {
	int mapped;
	uint64_t tx_pa, rx_pa;
	int rx_full; /* written by a list call, until FFA_RX_RELEASE */
} ns_buf;

static void log_line(struct line *l)
{
	line_str(l, "\n");
	pl011_write(SECURE_UART_BASE, l->buf, l->len);
}

static void set_success(struct ffa_regs *r, uint32_t w2, uint32_t w3)
{
	memset(r, 0, sizeof(*r));
	r->x[0] = FFA_SUCCESS_32;
	r->x[2] = w2;
	r->x[3] = w3;
}

static void set_error(struct ffa_regs *r, int32_t err)
{
	memset(r, 0, sizeof(*r));
	r->x[0] = FFA_ERROR;
	r->x[2] = (uint32_t)err;
}

static void handle_features(struct ffa_regs *r)
{
	uint32_t fid = (uint32_t)r->x[1];

	/* Feature IDs (NPI, SRI, ...) are never supported: this SPMC has no notifications. */
	if (fid & FFA_FEATURE_FID_BIT) {
		for (uint32_t i = 0; i < sc.n_supported; i++) {
			if (le32(sc.supported + 4 * i) == fid) {
				set_success(r, 0, 0);
				return;
			}
		}
	}
	set_error(r, FFA_RET_NOT_SUPPORTED);
}

static void handle_rxtx_map(struct ffa_regs *r)
{
	if (ns_buf.mapped) {
		set_error(r, FFA_RET_DENIED);
		return;
	}
	if ((uint32_t)r->x[3] == 0) {
		set_error(r, FFA_RET_INVALID_PARAMETERS);
		return;
	}
	ns_buf.mapped = 1;
	ns_buf.tx_pa = r->x[1];
	ns_buf.rx_pa = r->x[2];
	ns_buf.rx_full = 0;
	set_success(r, 0, 0);
}

static void handle_rxtx_unmap(struct ffa_regs *r)
{
	if (!ns_buf.mapped) {
		set_error(r, FFA_RET_INVALID_PARAMETERS);
		return;
	}
	ns_buf.mapped = 0;
	set_success(r, 0, 0);
}

static void handle_rx_release(struct ffa_regs *r)
{
	if (!ns_buf.rx_full) {
		set_error(r, FFA_RET_DENIED);
		return;
	}
	ns_buf.rx_full = 0;
	set_success(r, 0, 0);
}

/*
 * Count the scenario entries whose UUID (bytes 8..23) equals `uuid`, copying them
 * back to back into `out` when it is not NULL. Entries exist only with fpi_size >= 24,
 * for i < count while the entry lies inside data. The copies fit in one page because
 * together they are never longer than data (<= 4096 bytes).
 */
static uint32_t match_entries(const uint8_t uuid[16], uint8_t *out)
{
	uint32_t n = 0;

	if (sc.fpi_size < FPI_MIN_SIZE_WITH_UUID)
		return 0;
	for (uint32_t i = 0; i < sc.count && (uint64_t)(i + 1) * sc.fpi_size <= sc.data_len; i++) {
		const uint8_t *e = sc.data + (uint64_t)i * sc.fpi_size;

		if (memcmp(e + FPI_UUID_OFFSET, uuid, 16) != 0)
			continue;
		if (out)
			memcpy(out + (uint64_t)n * sc.fpi_size, e, sc.fpi_size);
		n++;
	}
	return n;
}

static void handle_partition_info_get(struct ffa_regs *r)
{
	static const uint8_t nil[16];
	uint8_t uuid[16];
	uint8_t *rx;
	uint32_t n;

	for (int i = 0; i < 4; i++) {
		uint32_t w = (uint32_t)r->x[1 + i];

		for (int b = 0; b < 4; b++)
			uuid[4 * i + b] = (uint8_t)(w >> (8 * b));
	}
	int is_nil = memcmp(uuid, nil, 16) == 0;

	if ((uint32_t)r->x[5] & PARTINFO_FLAG_COUNT) {
		n = is_nil ? sc.count : match_entries(uuid, NULL);
		if (n == 0 && !is_nil)
			set_error(r, FFA_RET_INVALID_PARAMETERS);
		else
			set_success(r, n, 0);
		return;
	}

	if (!ns_buf.mapped) {
		set_error(r, FFA_RET_DENIED);
		return;
	}
	if (ns_buf.rx_full) {
		set_error(r, FFA_RET_BUSY);
		return;
	}
	if (!is_nil && match_entries(uuid, NULL) == 0) {
		set_error(r, FFA_RET_INVALID_PARAMETERS);
		return;
	}
	/*
	 * With the MMU off this is a secure physical access; it reaches the caller's NS
	 * buffer only because QEMU virt aliases secure and non-secure RAM. On Juno/FVP the
	 * TZC does not: there the SPMC must map the normal-world RX/TX buffers with NS=1.
	 */
	rx = (uint8_t *)(uintptr_t)ns_buf.rx_pa;
	memset(rx, 0, FFA_PAGE_SIZE);
	if (is_nil) {
		memcpy(rx, sc.data, sc.data_len);
		n = sc.count;
	} else {
		n = match_entries(uuid, rx);
	}
	ns_buf.rx_full = 1;
	set_success(r, n, sc.fpi_size);
}

static void handle_direct_req(struct ffa_regs *r)
{
	uint32_t ids = (uint32_t)r->x[1];
	uint32_t resp;

	switch ((uint32_t)r->x[2]) {
	case FWK_VERSION_REQ:
		resp = FWK_VERSION_RESP;
		break;
	case FWK_VM_CREATED_REQ:
		resp = FWK_VM_CREATED_RESP;
		break;
	case FWK_VM_DESTROYED_REQ:
		resp = FWK_VM_DESTROYED_RESP;
		break;
	default:
		set_error(r, FFA_RET_NOT_SUPPORTED);
		return;
	}
	memset(r, 0, sizeof(*r));
	r->x[0] = FFA_MSG_SEND_DIRECT_RESP_32;
	r->x[1] = (ids << 16) | (ids >> 16); /* reply from the receiver to the sender */
	r->x[2] = resp;
	/* w3: the version for a version response, status 0 (success) for VM messages. */
	r->x[3] = resp == FWK_VERSION_RESP ? sc.ffa_version : 0;
}

static void handle(struct ffa_regs *r)
{
	switch ((uint32_t)r->x[0]) {
	case FFA_VERSION:
		memset(r, 0, sizeof(*r));
		r->x[0] = sc.ffa_version;
		break;
	case FFA_FEATURES:
		handle_features(r);
		break;
	case FFA_RXTX_MAP_32:
	case FFA_RXTX_MAP_64:
		handle_rxtx_map(r);
		break;
	case FFA_RXTX_UNMAP:
		handle_rxtx_unmap(r);
		break;
	case FFA_PARTITION_INFO_GET:
		handle_partition_info_get(r);
		break;
	case FFA_RX_RELEASE:
		handle_rx_release(r);
		break;
	case FFA_ID_GET:
		set_success(r, SPMC_ID, 0);
		break;
	case FFA_MSG_SEND_DIRECT_REQ_32:
		handle_direct_req(r);
		break;
	default:
		set_error(r, FFA_RET_NOT_SUPPORTED);
		break;
	}
}

/* One secure-UART line per call: "SPMC: <fid> w1=<w1> -> <w0> w2=<w2> w3=<w3>". */
static void log_call(uint32_t fid, uint32_t w1, const struct ffa_regs *resp)
{
	struct line l = { .len = 0 };

	line_str(&l, "SPMC: ");
	line_hex(&l, fid, 8);
	line_str(&l, " w1=");
	line_hex(&l, w1, 8);
	line_str(&l, " -> ");
	line_hex(&l, (uint32_t)resp->x[0], 8);
	line_str(&l, " w2=");
	line_hex(&l, (uint32_t)resp->x[2], 8);
	line_str(&l, " w3=");
	line_hex(&l, (uint32_t)resp->x[3], 8);
	log_line(&l);
}

static void banner(uint64_t manifest, uint64_t core, int ok)
{
	struct line l = { .len = 0 };

	line_str(&l, "HIL test SPMC v1 core=");
	line_dec(&l, (uint32_t)core);
	line_str(&l, " manifest=");
	line_hex(&l, manifest, 8);
	if (!ok) {
		line_str(&l, " error=bad-scenario-blob");
	} else {
		line_str(&l, " version=");
		line_hex(&l, sc.ffa_version, 8);
		line_str(&l, " count=");
		line_dec(&l, sc.count);
		line_str(&l, " fpi_size=");
		line_dec(&l, sc.fpi_size);
		line_str(&l, " data_len=");
		line_dec(&l, sc.data_len);
		line_str(&l, " supported=");
		line_dec(&l, sc.n_supported);
	}
	log_line(&l);
}

void spmc_main(uint64_t manifest, uint64_t core)
{
	struct ffa_regs r = { .x = { FFA_MSG_WAIT } };

	if (cold_boot_pending) {
		memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
		pl011_init(SECURE_UART_BASE);
		int ok = scenario_parse(__scenario_start,
					(uint32_t)(__scenario_end - __scenario_start), &sc) == 0;
		banner(manifest, core, ok);
		cold_boot_pending = 0;
		if (!ok) {
			/* FFA_ERROR instead of FFA_MSG_WAIT makes the SPMD fail SPMC init. */
			set_error(&r, FFA_RET_INVALID_PARAMETERS);
			ffa_smc(&r);
			return;
		}
	} else {
		struct line l = { .len = 0 };

		line_str(&l, "HIL test SPMC v1 secondary core=");
		line_dec(&l, (uint32_t)core);
		log_line(&l);
	}

	/* Each SMC hands back our answer (or MSG_WAIT at boot) and returns with the next call. */
	for (;;) {
		ffa_smc(&r);
		uint32_t fid = (uint32_t)r.x[0];
		uint32_t w1 = (uint32_t)r.x[1];

		handle(&r);
		log_call(fid, w1, &r);
	}
}
