/* hil triage's compiled line finder: exactly what hil.triage.scan.XEN_BODIES.finditer finds in
 * a block, in one pass, and the newlines before each find (so Python numbers lines without
 * counting them again). Built and loaded by hil.triage.compiled; the regex stays the reference
 * (tests/test_triage_reference.py compares the two on generated input).
 *
 * XEN_BODIES is "\(XEN\) (?:STAMP)?+((?:HEADS)[^\n]*+)": a stamp once read is not given back,
 * and a find ends at the line's newline (or the block's end), where the next search starts.
 * \s is bytes-regex whitespace (space, \t, \n, \r, \f, \v); \d is 0-9. */

#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>

typedef const unsigned char byte;

static int space(unsigned c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int digit(unsigned c) { return c - '0' < 10u; }
static int hex(unsigned c) { return digit(c) || (c | 0x20) - 'a' < 6u; }

static int literal(byte *p, byte *end, const char *text, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, text, n) == 0;
}

static int digits(byte *p, int n)
{
    for (int i = 0; i < n; i++)
        if (!digit(p[i]))
            return 0;
    return 1;
}

/* The stamp "[...] " at p, as its length, or 0: "\s*+\d++\.\d++", "YYYY-MM-DD hh:mm:ss" with
 * an optional ".mmm", or 16 hex digits (the three cannot both match one text). */
static size_t stamp(byte *p, byte *end)
{
    byte *q = p + 1, *r, *d;
    if (p >= end || *p != '[')
        return 0;
    for (r = q; r < end && space(*r); r++)
        ;
    for (d = r; r < end && digit(*r); r++)
        ;
    if (r > d && r < end && *r == '.') {
        for (d = ++r; r < end && digit(*r); r++)
            ;
        if (r > d && literal(r, end, "] ", 2))
            return (size_t)(r + 2 - p);
    }
    if (end - q >= 19 && digits(q, 4) && q[4] == '-' && digits(q + 5, 2) && q[7] == '-'
        && digits(q + 8, 2) && q[10] == ' ' && digits(q + 11, 2) && q[13] == ':'
        && digits(q + 14, 2) && q[16] == ':' && digits(q + 17, 2)) {
        r = q + 19;
        if (end - r >= 4 && r[0] == '.' && digits(r + 1, 3) && literal(r + 4, end, "] ", 2))
            return (size_t)(r + 6 - p);
        if (literal(r, end, "] ", 2))
            return (size_t)(r + 2 - p);
    }
    if (end - q >= 16) {
        for (r = q; r < q + 16 && hex(*r); r++)
            ;
        if (r == q + 16 && literal(r, end, "] ", 2))
            return (size_t)(r + 2 - p);
    }
    return 0;
}

#define LIT(s) literal(p, end, s, sizeof(s) - 1)

/* Whether one of XEN_BODIES' heads starts at p. */
static int head(byte *p, byte *end)
{
    byte *r;
    switch (p < end ? *p : 0) {
    case 'f':
        if (LIT("ffa: "))
            return 1;
        break;
    case 'A':
        if (LIT("ARM FF-A ") || LIT("Assertion '"))
            return 1;
        break;
    case 'U':
        if (LIT("Using TEE mediator "))
            return 1;
        break;
    case 'T':
        if (LIT("TEE Mediator ") || LIT("TEE mediator "))
            return 1;
        break;
    case 'X':
        if (LIT("Xen version ") || LIT("Xen BUG at "))
            return 1;
        break;
    case 'P':
        if (LIT("Panic on CPU "))
            return 1;
        break;
    case 'E':
        if (LIT("Error creating "))
            return 1;
        break;
    }
    /* "\S++ (?:ffa: |Cannot retrieve )": gprintk's vCPU, then the text. */
    for (r = p; r < end && !space(*r); r++)
        ;
    return r > p && (literal(r, end, " ffa: ", 6) || literal(r, end, " Cannot retrieve ", 17));
}

/* Finds in buf[pos:len], as XEN_BODIES.finditer(buf) would from pos (pos at 0 or after a
 * find): for each, its start, the start of its group 1, its end and the newlines in
 * buf[0:start] (``newlines`` is the count in buf[0:pos]), four longs into ``out``, at most
 * ``cap`` finds. Returns how many; ``*next`` is where to go on (len when the block is done) and
 * ``*counted`` the newlines in buf[0:*next]. */
long hil_xen_lines(const char *buf, long len, long pos, long newlines, long *out, long cap,
                   long *next, long *counted)
{
    byte *base = (byte *)buf, *end = base + len, *p = base + pos, *at = p, *hit, *body, *stop;
    long n = 0;
    while (n < cap && p < end) {
        hit = memmem(p, (size_t)(end - p), "(XEN) ", 6);
        if (hit == NULL)
            break;
        body = hit + 6;
        body += stamp(body, end);
        if (!head(body, end)) {
            p = hit + 1;
            continue;
        }
        stop = memchr(body, '\n', (size_t)(end - body));
        if (stop == NULL)
            stop = end;
        for (; at < hit; at++)
            newlines += *at == '\n';
        out[0] = hit - base;
        out[1] = body - base;
        out[2] = stop - base;
        out[3] = newlines;
        out += 4;
        n++;
        p = stop;
    }
    if (n < cap)
        p = end;
    for (; at < p; at++)
        newlines += *at == '\n';
    *next = p - base;
    *counted = newlines;
    return n;
}
