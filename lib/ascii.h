/*
 * ascii: whether bytes are printable ASCII (' '..'~'), 32 at a time.
 *
 * Shared by record, which marks a record whose bytes are all printable
 * (RECORD_F_PRINTABLE) as it copies them in (ascii_copy()), on the ingest
 * thread, and format, whose escapers copy such blocks without looking at
 * each byte.
 */
#ifndef LOGRAIL_ASCII_H
#define LOGRAIL_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Whether any of the 32 bytes at s lies outside ' '..'~'.  With SSE2 (every
 * x86-64): c - 0x20, less 0x5e with saturation, is zero exactly for the
 * printable bytes, and one byte mask tells.  GCC vectorises the plain loop
 * too, but folds its result with a chain of shifts (a third slower on
 * 2,000-byte messages). */
static inline bool ascii_unprintable32(const unsigned char *s)
{
#if defined(__SSE2__)
    const __m128i shift = _mm_set1_epi8((char)-0x20), span = _mm_set1_epi8(0x5e);
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
    a = _mm_subs_epu8(_mm_add_epi8(a, shift), span);
    b = _mm_subs_epu8(_mm_add_epi8(b, shift), span);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(a, b), _mm_setzero_si128())) != 0xffff;
#else
    unsigned char bad = 0;
    for (int j = 0; j < 32; j++)
        bad |= (unsigned char)((unsigned char)(s[j] - 0x20) > 0x5e);
    return bad != 0;
#endif
}

/* Whether all n bytes at p are printable ASCII.  From 32 bytes on, whole
 * blocks and a last one that overlaps the one before. */
static inline bool ascii_printable(const void *p, size_t n)
{
    const unsigned char *s = p;
    if (n >= 32) {
        for (size_t i = 0; i + 32 <= n; i += 32) {
            if (ascii_unprintable32(s + i))
                return false;
        }
        return !ascii_unprintable32(s + n - 32);
    }
    unsigned char bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= (unsigned char)((unsigned char)(s[i] - 0x20) > 0x5e);
    return bad == 0;
}

/* Copy n bytes from src to dst (not overlapping) and tell whether they are
 * all printable ASCII: one pass over the bytes instead of a look and then a
 * copy (2,000-byte messages: 71-81 -> 52-57 ns; 120 bytes the same). */
static inline bool ascii_copy(void *dst, const void *src, size_t n)
{
#if defined(__SSE2__)
    if (n >= 32) {
        const __m128i shift = _mm_set1_epi8((char)-0x20), span = _mm_set1_epi8(0x5e);
        unsigned char *d = dst;
        const unsigned char *s = src;
        __m128i bad = _mm_setzero_si128();
        for (size_t i = 0;; i += 32) {
            if (i + 32 > n)
                i = n - 32; /* the last block overlaps the one before */
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 16));
            _mm_storeu_si128((__m128i *)(void *)(d + i), a);
            _mm_storeu_si128((__m128i *)(void *)(d + i + 16), b);
            bad = _mm_or_si128(bad, _mm_subs_epu8(_mm_add_epi8(a, shift), span));
            bad = _mm_or_si128(bad, _mm_subs_epu8(_mm_add_epi8(b, shift), span));
            if (i + 32 == n)
                break;
        }
        return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) == 0xffff;
    }
#endif
    if (n > 0)
        memcpy(dst, src, n);
    return ascii_printable(src, n);
}

#endif
