/* Freestanding helpers: the mem* functions gcc may emit calls to, and a line builder that
 * formats the fixed-width hex the HILPROBE/SPMC log formats need (no printf here). */
#ifndef HIL_LIB_H
#define HIL_LIB_H

#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define LINE_MAX_LEN 256

/* An output line under construction; text past LINE_MAX_LEN - 1 bytes is dropped. */
struct line {
	char buf[LINE_MAX_LEN];
	size_t len;
};

void line_reset(struct line *l);
void line_str(struct line *l, const char *s);
void line_dec(struct line *l, uint32_t v);
/* "0x" followed by exactly `digits` lowercase hex digits. */
void line_hex(struct line *l, uint64_t v, unsigned digits);
/* Each byte as two lowercase hex digits, no separators. */
void line_bytes(struct line *l, const uint8_t *p, size_t n);
/* 16 bytes as RFC 4122 text: 8-4-4-4-12 lowercase hex. */
void line_uuid(struct line *l, const uint8_t uuid[16]);

/* Load a little-endian u32 byte by byte: blobs may sit at any alignment and, with the MMU
 * off, memory is Device type where unaligned accesses fault. */
uint32_t le32(const uint8_t *p);

#endif
