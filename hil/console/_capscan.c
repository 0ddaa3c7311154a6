/* hil console capture's compiled passes over one read, each what a few bytes methods do in
 * hil.console.logblock's pure-Python path, in one pass without copies. Built and loaded by
 * hil.console.logblock (tests/test_capture_block.py compares the two on generated input).
 *
 * The loops work on 16 bytes at a time with GCC/Clang vector extensions, which compile to the
 * host's SIMD instructions (SSE2, NEON) or to plain code: a console line is ~60 bytes, so most
 * 16-byte pieces hold no line end and are copied or passed over whole. */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef const unsigned char byte;
typedef unsigned char v16 __attribute__((vector_size(16)));

#define STEP 16

static v16 load(byte *p)
{
    v16 v;
    memcpy(&v, p, STEP);
    return v;
}

static v16 splat(unsigned char c)
{
    v16 v;
    memset(&v, c, STEP);
    return v;
}

/* The first set lane of a comparison result (lanes are 0 or 0xff), or STEP for none. */
static int first_lane(v16 m)
{
    uint64_t half[2];
    memcpy(half, &m, STEP);
    for (int i = 0; i < 2; i++) {
        if (half[i]) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i * 8 + __builtin_ctzll(half[i]) / 8;
#else
            return i * 8 + __builtin_clzll(half[i]) / 8;
#endif
        }
    }
    return STEP;
}

/* Whether every byte of p[0..n) is one the .log writes as it is: printable ASCII, tab, CR, LF
 * (hil.console.logblock.PLAIN). */
int hil_plain(byte *p, long n)
{
    const v16 space = splat(0x20), span = splat(0x7f - 0x20);
    const v16 tab = splat('\t'), lf = splat('\n'), cr = splat('\r');
    long i = 0;
    while (i + 64 <= n) {
        v16 bad = splat(0);
        for (int k = 0; k < 64; k += STEP) {
            v16 v = load(p + i + k);
            /* Unsigned: bytes below 0x20 wrap around to above the span. */
            bad |= (v16)((v16)(v - space) >= span) & ~(v16)((v == tab) | (v == lf) | (v == cr));
        }
        if (first_lane(bad) < STEP)
            return 0;
        i += 64;
    }
    for (; i < n; i++) {
        unsigned c = p[i];
        if ((c < 0x20 || c >= 0x7f) && c != '\t' && c != '\n' && c != '\r')
            return 0;
    }
    return 1;
}

/* The first offset in p[0..n) where one of the count needles (needles[k], of lens[k] bytes,
 * each at least 1) starts, or -1: the least of p.find(needle) over the needles. Each 16 bytes
 * are first checked for a needle's first and last byte at the right distance, which console
 * text rarely has, and only such places are compared in full. */
long hil_find_any(byte *p, long n, byte *const *needles, const long *lens, long count)
{
    enum { MOST = 16 };
    v16 firsts[MOST], lasts[MOST];
    long shortest = n + 1, longest = 0, i = 0;
    for (long k = 0; k < count; k++) {
        shortest = lens[k] < shortest ? lens[k] : shortest;
        longest = lens[k] > longest ? lens[k] : longest;
        if (k < MOST) {
            firsts[k] = splat(needles[k][0]);
            lasts[k] = splat(needles[k][lens[k] - 1]);
        }
    }
    if (count == 0 || shortest > n)
        return -1;
    /* Vector steps while every needle's last byte is within p (with few enough needles). */
    for (; count <= MOST && i + STEP + longest - 1 <= n; i += STEP) {
        v16 at = load(p + i), any = splat(0);
        for (long k = 0; k < count; k++)
            any |= (v16)(at == firsts[k]) & (v16)(load(p + i + lens[k] - 1) == lasts[k]);
        if (first_lane(any) == STEP)
            continue;
        for (long j = i; j < i + STEP; j++)
            for (long k = 0; k < count; k++)
                if (p[j] == needles[k][0] && memcmp(p + j, needles[k], lens[k]) == 0)
                    return j;
    }
    for (; i + shortest <= n; i++)
        for (long k = 0; k < count; k++)
            if (i + lens[k] <= n && p[i] == needles[k][0] && memcmp(p + i, needles[k], lens[k]) == 0)
                return i;
    return -1;
}

/* The .log text of p[0..n), plain bytes that end with a newline: each CR dropped and prefix
 * (plen bytes) written after each newline but the last, into out (cap bytes). Stops before a
 * line that would not fit; returns the bytes written and sets *consumed to the input used (a
 * whole number of lines). cap must hold the longest line plus the prefix. */
long hil_log_lines(byte *p, long n, byte *prefix, long plen, unsigned char *out, long cap,
                   long *consumed)
{
    const v16 lf = splat('\n'), cr = splat('\r');
    long i = 0, o = 0, line = 0, line_out = 0;
    /* The prefix in whole vectors (a time stamp and a name: short), copied with a few stores. */
    enum { PAD = 4 * STEP };
    v16 pad[PAD / STEP];
    int short_prefix = plen <= PAD;
    memset(pad, 0, sizeof pad);
    if (short_prefix)
        memcpy(pad, prefix, (size_t)plen);
    for (;;) {
        /* Copy 16 bytes at a time up to the next CR or LF (writing all 16 is harmless: they
         * are overwritten or lie beyond the end). */
        int lane = STEP;
        while (i + STEP <= n && o + STEP <= cap) {
            v16 v = load(p + i);
            memcpy(out + o, &v, STEP);
            lane = first_lane((v16)((v == lf) | (v == cr)));
            if (lane < STEP)
                break;
            i += STEP;
            o += STEP;
        }
        if (lane < STEP) {
            i += lane;
            o += lane;
        } else {
            while (i < n && o < cap && p[i] != '\n' && p[i] != '\r')
                out[o++] = p[i++];
        }
        if (i >= n || o >= cap) {
            /* Out of room (the input ends with a newline, so that is all it can be). */
            *consumed = line;
            return line_out;
        }
        if (p[i] == '\r') {
            i++;
            if (i == n || p[i] != '\n')
                continue;
        }
        /* A newline: the line is complete. */
        out[o++] = '\n';
        i++;
        if (i == n) {
            *consumed = n;
            return o;
        }
        if (o + plen > cap) {
            *consumed = line;
            return line_out;
        }
        if (short_prefix && o + PAD <= cap)
            memcpy(out + o, pad, PAD);  /* what lies after the prefix is written over next */
        else
            memcpy(out + o, prefix, (size_t)plen);
        o += plen;
        line = i;
        line_out = o;
    }
}
