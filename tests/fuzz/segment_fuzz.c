/*
 * segment_fuzz.c: libFuzzer target for recovery on arbitrary bytes. The
 * input becomes the body of a segment (after a valid header) and is
 * scanned as the last and as a sealed segment; the scan must classify it
 * (clean, torn, corrupt, chain) without crashing or reading out of bounds,
 * and its answer must be self-consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/limits.h"
#include "engine/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { SEG = 64 << 10 };
    static uint8_t image[SEG];
    reel_segment_header_t h = {REEL_FORMAT_VERSION, REEL_BLOCK_SIZE, SEG, 0, 0, 1};
    reel_scan_t s;
    size_t body = size < SEG - REEL_SEGMENT_HEADER_SIZE ? size : SEG - REEL_SEGMENT_HEADER_SIZE;
    reel_segment_header_encode(image, &h);
    memset(image + REEL_SEGMENT_HEADER_SIZE, 0, SEG - REEL_SEGMENT_HEADER_SIZE);
    memcpy(image + REEL_SEGMENT_HEADER_SIZE, data, body);
    for (int last = 0; last < 2; last++) {
        int rc = reel_segment_scan(image, SEG, &h, last, NULL, NULL, &s);
        REEL_ASSERT(rc == s.status);
        REEL_ASSERT(s.end_pos >= REEL_SEGMENT_HEADER_SIZE);
        REEL_ASSERT(s.end_pos <= SEG);
        REEL_ASSERT(s.next_offset == s.records);
        REEL_ASSERT(rc != REEL_ETORN || last);
    }
    /* The header decoder on arbitrary bytes too. */
    if (size >= REEL_SEGMENT_HEADER_SIZE) {
        reel_segment_header_t out;
        (void)reel_segment_header_decode(data, &out);
    }
    return 0;
}
