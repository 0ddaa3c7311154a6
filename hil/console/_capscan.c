/* hil console capture's compiled passes over one read, each what a few bytes methods do in
 * hil.console.capscan's pure-Python path, in one pass without copies. Built and loaded by
 * hil.console.capscan (tests/test_capscan.py compares the two on generated input).
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

/* The first offset in p[0..n) where one of the count needles (needles[k], of lens[k] bytes,
 * each at least 1) starts, or -1: the least of p.find(needle) over the needles. Each 16 bytes
 * are first checked for a needle's first and last byte at the right distance, which console
 * text rarely has, and only such places are compared in full. */
/* Vector steps over p from i while i < stop: the offset of the first 16 bytes where one of
 * count needles may start (*found set), or where the steps ended. Inlined with count fixed
 * (hil_find_any's switch), so the needles' loop is unrolled. */
static inline __attribute__((always_inline)) long steps(byte *p, long i, long stop,
                                                        const v16 *firsts, const v16 *lasts,
                                                        const long *lens, const long count,
                                                        int *found)
{
    for (; i < stop; i += STEP) {
        v16 at = load(p + i), any = splat(0);
        for (long k = 0; k < count; k++)
            any |= (v16)(at == firsts[k]) & (v16)(load(p + i + lens[k] - 1) == lasts[k]);
        if (first_lane(any) < STEP) {
            *found = 1;
            return i;
        }
    }
    *found = 0;
    return i;
}

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
    long stop = count <= MOST ? n - STEP - longest + 2 : 0;
    for (;;) {
        int found;
        switch (count) {
#define FIXED(K)                                                                                   \
    case K:                                                                                        \
        i = steps(p, i, stop, firsts, lasts, lens, K, &found);                                     \
        break;
            FIXED(1) FIXED(2) FIXED(3) FIXED(4) FIXED(5) FIXED(6) FIXED(7) FIXED(8)
#undef FIXED
        default:
            i = steps(p, i, stop, firsts, lasts, lens, count, &found);
        }
        if (!found)
            break;
        for (long j = i; j < i + STEP; j++)
            for (long k = 0; k < count; k++)
                if (p[j] == needles[k][0] && memcmp(p + j, needles[k], lens[k]) == 0)
                    return j;
        i += STEP;
    }
    for (; i + shortest <= n; i++)
        for (long k = 0; k < count; k++)
            if (i + lens[k] <= n && p[i] == needles[k][0] && memcmp(p + i, needles[k], lens[k]) == 0)
                return i;
    return -1;
}

/* Why hil_log_lines stopped (state[1]). */
enum { DONE = 0, ROOM = 1, NOT_ASCII = 2 };

/* The .log text of p[0..n), whole lines (the last byte is a newline): each line as
 * hil.console.model.record_text makes it of ASCII (CRs dropped, tabs kept, every other control
 * character and DEL written as its Python escape, \xhh), then a newline, and prefix (plen
 * bytes) after each newline but the last; into out (cap bytes). Returns the bytes written and
 * sets state[0] to the input used, always whole lines, and state[1] to why it stopped: DONE;
 * ROOM, out is full; NOT_ASCII, the line at state[0] has a byte above 0x7f (UTF-8 is decoded
 * by the caller). Without room for one line (4 x its bytes) and the prefix it uses nothing. */
long hil_log_lines(byte *p, long n, byte *prefix, long plen, unsigned char *out, long cap,
                   long *state)
{
    static const char hex[] = "0123456789abcdef";
    const v16 space = splat(0x20), span = splat(0x7f - 0x20);
    long i = 0, o = 0, line = 0, line_out = 0;
    /* The prefix in whole vectors (a time stamp and a name: short), copied with a few stores. */
    enum { PAD = 4 * STEP };
    v16 pad[PAD / STEP];
    int short_prefix = plen <= PAD;
    memset(pad, 0, sizeof pad);
    if (short_prefix)
        memcpy(pad, prefix, (size_t)plen);
    state[1] = ROOM;
    for (;;) {
        /* Copy 16 bytes at a time up to the next byte that is not printable ASCII (writing
         * all 16 is harmless: they are overwritten or lie beyond the end). */
        int lane = STEP;
        while (i + STEP <= n && o + STEP <= cap) {
            v16 v = load(p + i);
            memcpy(out + o, &v, STEP);
            lane = first_lane((v16)((v16)(v - space) >= span));
            if (lane < STEP)
                break;
            i += STEP;
            o += STEP;
        }
        if (lane < STEP) {
            i += lane;
            o += lane;
        } else {
            while (i < n && o < cap && p[i] - 0x20u < 0x7f - 0x20u)
                out[o++] = p[i++];
        }
        if (i >= n || o >= cap)
            break; /* out of room (the input ends with a newline, so that is all it can be) */
        unsigned c = p[i];
        if (c == '\r') {
            i++;
            continue;
        }
        if (c == '\t') {
            out[o++] = p[i++];
            continue;
        }
        if (c >= 0x80) {
            state[1] = NOT_ASCII;
            break;
        }
        if (c != '\n') {
            /* Another control character, or DEL. */
            if (o + 4 > cap)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            i++;
            continue;
        }
        /* A newline: the line is complete. */
        out[o++] = '\n';
        i++;
        if (i == n) {
            state[0] = n;
            state[1] = DONE;
            return o;
        }
        if (o + plen > cap)
            break;
        if (short_prefix && o + PAD <= cap)
            memcpy(out + o, pad, PAD); /* what lies after the prefix is written over next */
        else
            memcpy(out + o, prefix, (size_t)plen);
        o += plen;
        line = i;
        line_out = o;
    }
    state[0] = line;
    return line_out;
}
