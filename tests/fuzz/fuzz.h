#ifndef CHAT_FUZZ_H
#define CHAT_FUZZ_H

/*
 * Helpers shared by the libFuzzer targets of tests/fuzz.  Header-only (static
 * functions) so that each target is one translation unit plus common/.
 *
 * FUZZ_CHECK is for the properties a target asserts beyond "no sanitizer
 * report": a failed check prints the expression and aborts, which libFuzzer
 * reports as a crash and saves the input.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A heap copy of exactly n bytes (no terminator), so that ASan catches any
 * read past the end of an API that takes (pointer, length). */
static inline char *fuzz_memdup(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    FUZZ_CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    return p;
}

/* A heap copy of n bytes plus a NUL (the string ends at the first NUL of data,
 * as any C consumer would see it). */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    size_t len = 0;
    while (len < n && data[len])
        len++;
    char *p = malloc(len + 1);
    FUZZ_CHECK(p != NULL);
    memcpy(p, data, len);
    p[len] = '\0';
    return p;
}

/* data split on NUL bytes into at most max heap strings (each exactly sized);
 * *count receives how many.  The array and strings are freed by fuzz_free_parts. */
static inline char **fuzz_split(const uint8_t *data, size_t size, int max, int *count)
{
    char **parts = calloc((size_t)max + 1, sizeof(*parts));
    int n = 0;
    size_t start = 0;
    FUZZ_CHECK(parts != NULL);
    if (size == 0) {
        *count = 0;
        return parts;
    }
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || data[i] == '\0') {
            parts[n++] = fuzz_strndup(data + start, i - start);
            start = i + 1;
        }
    }
    *count = n;
    return parts;
}

static inline void fuzz_free_parts(char **parts, int count)
{
    for (int i = 0; i < count; i++)
        free(parts[i]);
    free(parts);
}

/* Reference UTF-8 decoder (RFC 3629 table 3-7 well-formed byte sequences),
 * written differently from common/protocol.c on purpose: the targets compare
 * the two.  Returns the code point count, or -1; each code point is passed to
 * cb when cb is not NULL. */
static inline long fuzz_ref_utf8(const unsigned char *s, size_t len,
                                 void (*cb)(uint32_t cp, void *arg), void *arg)
{
    long count = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char b0 = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;
        uint32_t cp;
        if (b0 <= 0x7f) {
            n = 0;
            cp = b0;
        } else if (b0 >= 0xc2 && b0 <= 0xdf) {
            n = 1;
            cp = b0 & 0x1f;
        } else if (b0 >= 0xe0 && b0 <= 0xef) {
            n = 2;
            cp = b0 & 0x0f;
            if (b0 == 0xe0)
                lo = 0xa0;
            else if (b0 == 0xed)
                hi = 0x9f;
        } else if (b0 >= 0xf0 && b0 <= 0xf4) {
            n = 3;
            cp = b0 & 0x07;
            if (b0 == 0xf0)
                lo = 0x90;
            else if (b0 == 0xf4)
                hi = 0x8f;
        } else {
            return -1;
        }
        if (len - i - 1 < n)
            return -1;
        for (size_t k = 1; k <= n; k++) {
            unsigned char b = s[i + k];
            unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
            if (b < l || b > h)
                return -1;
            cp = (cp << 6) | (b & 0x3fu);
        }
        if (cb)
            cb(cp, arg);
        i += n + 1;
        count++;
    }
    return count;
}

#endif
