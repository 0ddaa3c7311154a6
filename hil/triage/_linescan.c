/* hil triage's compiled line finder: exactly what hil.triage.scan.XEN_BODIES.finditer finds in
 * a block and where TF-A's banner is, in one pass, with the newlines before each (so Python
 * numbers lines without counting them again). Built and loaded by hil.triage.compiled; the regex stays the reference
 * (tests/test_triage_reference.py compares the two on generated input).
 *
 * XEN_BODIES is "\(XEN\) (?:STAMP)?+((?:HEADS)[^\n]*+)": a stamp once read is not given back,
 * and a find ends at the line's newline (or the block's end), where the next search starts.
 * \s is bytes-regex whitespace (space, \t, \n, \r, \f, \v); \d is 0-9; a stamp takes no \r or \n. */

#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>

typedef const unsigned char byte;

static int space(unsigned c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int blank(unsigned c) { return space(c) && c != '\n' && c != '\r'; } /* within a line */
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

/* The stamp "[...] " at p, as its length, or 0: "[ \t\v\f]*+\d++\.\d++" (no CR or LF: they end
 * what a terminal shows as the line), "YYYY-MM-DD hh:mm:ss" with an optional ".mmm", or 16 hex
 * digits (the three cannot both match one text). */
static size_t stamp(byte *p, byte *end)
{
    byte *q = p + 1, *r, *d;
    if (p >= end || *p != '[')
        return 0;
    for (r = q; r < end && blank(*r); r++)
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

/* The newlines in [p, end): 16 bytes at a time in byte lanes (GCC/Clang vectors: SSE2, NEON,
 * or plain code where there are none). Finds are a few lines apart, so most calls count a few
 * hundred bytes: the lanes are summed every 31 steps (a lane then holds at most 31, eight of
 * them at most 248: one multiply sums a half without overflow). */
typedef unsigned char lanes __attribute__((vector_size(16)));

static long newlines_in(byte *p, byte *end)
{
    const unsigned long long ones = 0x0101010101010101ULL;
    const lanes newline = {'\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n',
                           '\n', '\n', '\n', '\n', '\n', '\n', '\n', '\n'};
    long count = 0;
    while (end - p >= 16) {
        lanes sum = {0}, chunk;
        unsigned long long halves[2];
        long steps = (end - p) / 16 < 31 ? (end - p) / 16 : 31;
        for (byte *stop = p + steps * 16; p < stop; p += 16) {
            memcpy(&chunk, p, 16);
            sum -= (lanes)(chunk == newline); /* a match is all ones: -1 */
        }
        memcpy(halves, &sum, 16);
        count += (long)((halves[0] * ones) >> 56) + (long)((halves[1] * ones) >> 56);
    }
    for (; p < end; p++)
        count += *p == '\n';
    return count;
}

#define LIT(s) literal(p, end, s, sizeof(s) - 1)
#define LIT_AT(q, s) literal(q, end, s, sizeof(s) - 1)

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
    case '[':
        /* "\[[^\n]{0,30}?(?:ffa: |ARM FF-A )": a stamp damaged on the way, then FF-A's words. */
        for (r = p + 1; r <= p + 31 && r < end; r++) {
            if (LIT_AT(r, "ffa: ") || LIT_AT(r, "ARM FF-A "))
                return 1;
            if (*r == '\n')
                break;
        }
        break;
    }
    /* "\S++ (?:ffa: |Cannot retrieve )": gprintk's vCPU, then the text. */
    for (r = p; r < end && !space(*r); r++)
        ;
    return r > p && (literal(r, end, " ffa: ", 6) || literal(r, end, " Cannot retrieve ", 17));
}

/* The next find of XEN_BODIES at or after p (p at 0, after a find, or at a find), or NULL. */
static byte *xen_find(byte *p, byte *end, byte **body, byte **stop)
{
    byte *hit;
    /* memchr, not memmem: memmem sets up its search anew at each of Xen's many lines */
    while (p < end && (hit = memchr(p, '(', (size_t)(end - p))) != NULL) {
        if (!literal(hit, end, "(XEN) ", 6)) {
            p = hit + 1;
            continue;
        }
        *body = hit + 6 + stamp(hit + 6, end);
        if (head(*body, end)) {
            *stop = memchr(*body, '\n', (size_t)(end - *body));
            if (*stop == NULL)
                *stop = end;
            return hit;
        }
        p = hit + 1;
    }
    return NULL;
}

/* Where in the banner to look first: its first capital after the first byte (in "Booting
 * Trusted Firmware", the T: rarer in a console log than the B of every "BAR"), else its first. */
static size_t rare_at(const char *banner, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (banner[i] >= 'A' && banner[i] <= 'Z')
            return i;
    return 0;
}

/* The first ``banner`` (n bytes, its byte k looked for first) at or after p, or NULL: what
 * memmem finds, found by memchr for byte k and a compare at each. */
static byte *banner_find(byte *p, byte *end, const char *banner, size_t n, size_t k)
{
    byte *q = p + k;
    while (end - q > 0 && (q = memchr(q, banner[k], (size_t)(end - q))) != NULL) {
        if ((size_t)(end - (q - k)) >= n && memcmp(q - k, banner, n) == 0)
            return q - k;
        q++;
    }
    return NULL;
}

/* The line around the banner at b as [start, stop) when it is read whole, as Scanner._general
 * decides (no longer than max_line; at the block's start only when ``first_own``), else -1s. */
static void banner_line(byte *base, byte *end, byte *b, long first_own, long max_line, long *out)
{
    byte *from = b - base > max_line ? b - max_line : base;
    byte *start = memrchr(from, '\n', (size_t)(b - from)), *stop;
    out[0] = out[1] = -1;
    if (start != NULL)
        start++;
    else if (from == base && first_own)
        start = base;
    else
        return; /* over-long, or it goes on from the block before */
    stop = memchr(b, '\n', (size_t)(end - b));
    if (stop == NULL)
        stop = end;
    if (stop - start <= max_line) {
        out[0] = start - base;
        out[1] = stop - base;
    }
}

/* In one pass over buf[0:len]: XEN_BODIES' finds, as finditer gives them, and each occurrence of
 * ``banner``, as repeated bytes.find from one after the last gives them. A find that is a whole
 * line of its own (at a line start, or at 0 when ``first_own``; at most ``max_line`` long; ending
 * at or before ``whole``) goes to own_out, five longs: its start, group 1's start, its end, the
 * newlines before its start, and where its key ends in ``keys``: group 1 and a newline are
 * appended there for each (never more than ``len`` bytes in all: group 1 starts 6 bytes into
 * its line), so the keys of consecutive own lines are one slice. Any other find goes to
 * other_out, two longs: where, the newlines before it, and a banner to banner_out, five longs:
 * where, the newlines before it, its line's start and end when it is read whole (else -1s), and
 * the own finds before it in the block. At most
 * ``cap`` in each per call; ``state`` (nine longs, zero at first) says where each search goes
 * on, how far newlines are counted and their count, and, on return, how many of each this call
 * wrote, and the bytes in ``keys``. The block is done when both searches are at ``len``. */
void hil_lines(const char *buf, long len, const char *banner, long banner_len, long first_own,
               long max_line, long whole, long *own_out, long *other_out, long *banner_out,
               long cap, long *state, char *keys)
{
    byte *base = (byte *)buf, *end = base + len, *at = base + state[2];
    byte *body = NULL, *stop = NULL, *x, *b;
    long newlines = state[3], owns = 0, others = 0, banners = 0, keyed = state[7];
    long owned = state[8]; /* own finds in the block so far, over all calls */
    x = xen_find(base + state[0], end, &body, &stop);
    size_t rare = rare_at(banner, (size_t)banner_len);
    b = banner_find(base + state[1], end, banner, (size_t)banner_len, rare);
    while (x != NULL || b != NULL) {
        if (x != NULL && (b == NULL || x < b)) {
            int own = (x > base ? x[-1] == '\n' : first_own != 0) && stop - x <= max_line
                      && stop - base <= whole;
            if (own ? owns == cap : others == cap)
                break;
            if (at < x) {
                newlines += newlines_in(at, x);
                at = x;
            }
            if (own) {
                own_out[0] = x - base;
                own_out[1] = body - base;
                own_out[2] = stop - base;
                own_out[3] = newlines;
                memcpy(keys + keyed, body, (size_t)(stop - body));
                keyed += stop - body;
                keys[keyed++] = '\n';
                own_out[4] = keyed;
                own_out += 5;
                owned++;
                owns++;
            } else {
                other_out[0] = x - base;
                other_out[1] = newlines;
                other_out += 2;
                others++;
            }
            x = xen_find(stop, end, &body, &stop);
        } else {
            if (banners == cap)
                break;
            if (at < b) {
                newlines += newlines_in(at, b);
                at = b;
            }
            banner_out[0] = b - base;
            banner_out[1] = newlines;
            banner_line(base, end, b, first_own, max_line, banner_out + 2);
            banner_out[4] = owned;
            banner_out += 5;
            banners++;
            b = banner_find(b + 1, end, banner, (size_t)banner_len, rare);
        }
    }
    if (x == NULL && b == NULL) {
        newlines += newlines_in(at, end);
        at = end;
    }
    state[0] = x != NULL ? x - base : len;
    state[1] = b != NULL ? b - base : len;
    state[2] = at - base;
    state[3] = newlines;
    state[4] = owns;
    state[5] = others;
    state[6] = banners;
    state[7] = keyed;
    state[8] = owned;
}
