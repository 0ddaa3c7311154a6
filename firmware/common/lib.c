#include "lib.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;

	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

static void line_putc(struct line *l, char c)
{
	if (l->len < LINE_MAX_LEN - 1)
		l->buf[l->len++] = c;
}

void line_reset(struct line *l)
{
	l->len = 0;
}

void line_str(struct line *l, const char *s)
{
	while (*s)
		line_putc(l, *s++);
}

void line_dec(struct line *l, uint32_t v)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		line_putc(l, tmp[--n]);
}

static const char hexdigits[] = "0123456789abcdef";

void line_hex(struct line *l, uint64_t v, unsigned digits)
{
	line_str(l, "0x");
	while (digits--)
		line_putc(l, hexdigits[(v >> (digits * 4)) & 0xf]);
}

void line_bytes(struct line *l, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		line_putc(l, hexdigits[p[i] >> 4]);
		line_putc(l, hexdigits[p[i] & 0xf]);
	}
}

void line_uuid(struct line *l, const uint8_t uuid[16])
{
	static const uint8_t group_len[] = { 4, 2, 2, 2, 6 };
	const uint8_t *p = uuid;

	for (unsigned g = 0; g < sizeof(group_len); g++) {
		if (g)
			line_putc(l, '-');
		line_bytes(l, p, group_len[g]);
		p += group_len[g];
	}
}

uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
