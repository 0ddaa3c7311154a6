/*
 * HIL probe: runs the FF-A calls of its probe plan and prints every answer as a HILPROBE
 * line (format: hil/probe.py, which parses what this prints byte for byte).
 *
 * It runs either as Xen's dom0 at EL1 (FF-A calls trapped by Xen's mediator, output through
 * HYPERVISOR_console_io) or directly as TF-A's BL33 at EL2 (calls go to the SPMD, output on
 * the NS pl011).
 *
 * Plan blob ("ProbePlan"), little-endian u32 words:
 *   "HILPRB01" | n_versions | version[n_versions] | n_queries | n_queries x {w1 w2 w3 w4 w5 0}
 */
#include "ffa.h"
#include "lib.h"
#include "pl011.h"
#include "platform.h"

#define PLAN_MAGIC        "HILPRB01"
#define QUERY_WORDS       6u
#define FFA_VERSION_1_0   0x00010000u
#define PARTINFO_FLAG_COUNT 1u
#define FPI_SIZE_V1_0     8u
#define FPI_SIZE_V1_1     24u
#define RX_CHUNK          64u

extern const uint8_t __plan_start[], __plan_end[];
void xen_console_write(const char *buf, size_t len);

static uint8_t rx_buf[FFA_PAGE_SIZE] __attribute__((aligned(FFA_PAGE_SIZE)));
static uint8_t tx_buf[FFA_PAGE_SIZE] __attribute__((aligned(FFA_PAGE_SIZE)));
static unsigned current_el;

static unsigned read_current_el(void)
{
	uint64_t v;

	__asm__ volatile("mrs %0, CurrentEL" : "=r"(v));
	return (unsigned)(v >> 2) & 3;
}

static void emit(struct line *l)
{
	line_str(l, "\n");
	if (current_el == 2)
		pl011_write(NS_UART_BASE, l->buf, l->len);
	else
		xen_console_write(l->buf, l->len);
	line_reset(l);
}

static void put_word(struct line *l, const char *name, uint64_t v)
{
	line_str(l, name);
	line_hex(l, (uint32_t)v, 8);
}

static void call(struct ffa_regs *r, uint32_t fid, uint64_t a1, uint64_t a2, uint64_t a3,
		 uint64_t a4, uint64_t a5)
{
	*r = (struct ffa_regs){ .x = { fid, a1, a2, a3, a4, a5 } };
	ffa_smc(r);
}

static void dump_rx(struct line *l, uint32_t q, uint32_t n)
{
	for (uint32_t off = 0; off < n; off += RX_CHUNK) {
		uint32_t len = n - off < RX_CHUNK ? n - off : RX_CHUNK;

		line_str(l, "HILPROBE rx q=");
		line_dec(l, q);
		line_str(l, " off=");
		line_hex(l, off, 4);
		line_str(l, " hex=");
		line_bytes(l, rx_buf + off, len);
		emit(l);
	}
}

static void run_query(struct line *l, uint32_t q, const uint8_t *w, uint32_t guest_version)
{
	struct ffa_regs r;
	uint8_t uuid[16];
	uint32_t flags = le32(w + 16);

	memcpy(uuid, w, 16); /* w1..w4 as little-endian words are the UUID bytes in order */
	/* Bytes the callee does not write then read back as zero, not as a previous answer. */
	memset(rx_buf, 0, sizeof(rx_buf));
	call(&r, FFA_PARTITION_INFO_GET, le32(w), le32(w + 4), le32(w + 8), le32(w + 12), flags);
	line_str(l, "HILPROBE partinfo q=");
	line_dec(l, q);
	line_str(l, " uuid=");
	line_uuid(l, uuid);
	put_word(l, " flags=", flags);
	put_word(l, " w0=", r.x[0]);
	put_word(l, " w2=", r.x[2]);
	put_word(l, " w3=", r.x[3]);
	emit(l);
	if ((uint32_t)r.x[0] != FFA_SUCCESS_32 || (flags & PARTINFO_FLAG_COUNT))
		return;

	/* w3 = 0 means "descriptor size implied by the version" (count-mode style answers). */
	uint64_t size = (uint32_t)r.x[3];
	if (size == 0)
		size = guest_version == FFA_VERSION_1_0 ? FPI_SIZE_V1_0 : FPI_SIZE_V1_1;
	uint64_t n = (uint32_t)r.x[2] * size;
	dump_rx(l, q, n < FFA_PAGE_SIZE ? (uint32_t)n : FFA_PAGE_SIZE);

	call(&r, FFA_RX_RELEASE, 0, 0, 0, 0, 0);
	line_str(l, "HILPROBE rx_release q=");
	line_dec(l, q);
	put_word(l, " w0=", r.x[0]);
	put_word(l, " w2=", r.x[2]);
	emit(l);
}

/* Returns 0 with the word counts set if the plan fits its window, -1 otherwise. */
static int check_plan(const uint8_t *p, uint32_t size, uint32_t *n_versions, uint32_t *n_queries)
{
	if (memcmp(p, PLAN_MAGIC, 8) != 0)
		return -1;
	*n_versions = le32(p + 8);
	if (*n_versions > (size - 16) / 4)
		return -1;
	uint32_t rest = size - 16 - 4 * *n_versions;
	*n_queries = le32(p + 12 + 4 * *n_versions);
	return *n_queries <= rest / (4 * QUERY_WORDS) ? 0 : -1;
}

void probe_main(void)
{
	const uint8_t *plan = __plan_start;
	struct line l = { .len = 0 };
	struct ffa_regs r;
	uint32_t n_versions, n_queries, guest_version = 0;

	current_el = read_current_el();
	if (current_el == 2)
		pl011_init(NS_UART_BASE);
	if (check_plan(plan, (uint32_t)(__plan_end - __plan_start), &n_versions, &n_queries)) {
		line_str(&l, "HILPROBE error bad-plan");
		emit(&l);
		line_str(&l, "HILPROBE end");
		emit(&l);
		return;
	}

	line_str(&l, "HILPROBE begin versions=");
	line_dec(&l, n_versions);
	line_str(&l, " queries=");
	line_dec(&l, n_queries);
	line_str(&l, " el=");
	line_dec(&l, current_el);
	emit(&l);

	for (uint32_t i = 0; i < n_versions; i++) {
		guest_version = le32(plan + 12 + 4 * i);
		call(&r, FFA_VERSION, guest_version, 0, 0, 0, 0);
		put_word(&l, "HILPROBE version req=", guest_version);
		put_word(&l, " w0=", r.x[0]);
		emit(&l);
	}

	/* The buffers' addresses are IPAs under Xen (dom0 is 1:1) and PAs at EL2. */
	call(&r, FFA_RXTX_MAP_64, (uintptr_t)tx_buf, (uintptr_t)rx_buf, 1, 0, 0);
	put_word(&l, "HILPROBE rxtx_map w0=", r.x[0]);
	put_word(&l, " w2=", r.x[2]);
	emit(&l);

	const uint8_t *queries = plan + 16 + 4 * n_versions;
	for (uint32_t q = 0; q < n_queries; q++)
		run_query(&l, q, queries + 4 * QUERY_WORDS * q, guest_version);

	line_str(&l, "HILPROBE end");
	emit(&l);
}
