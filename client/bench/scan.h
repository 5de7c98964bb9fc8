#ifndef BENCH_SCAN_H
#define BENCH_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A fast, allocation-free reader for the few top-level fields chat-bench
 * needs from each server frame, so that hundreds of thousands of deliveries
 * per second are not each parsed into a jansson tree.  It walks the top
 * level of one JSON object, skipping nested values and strings (escapes
 * included) properly, so a field name inside a string or a nested object is
 * never mistaken for a top-level one.
 */

struct bench_str {
    const char *p; /* borrowed from the frame, raw JSON string contents (escapes not decoded) */
    size_t len;
};

struct bench_frame {
    struct bench_str type, room, id, body, code;
    int64_t seq; /* -1 when absent or not a non-negative integer */
};

/* 0 when data is one JSON object (fields missing from it are empty), -1
 * otherwise.  Pointers in *f borrow from data. */
int bench_scan_frame(const char *data, size_t len, struct bench_frame *f);

/* True when s equals the NUL-terminated lit. */
bool bench_str_is(struct bench_str s, const char *lit);

#endif
