/*
 * record.c: encoding and checking of one record (layout in record.h).
 */
#include "engine/record.h"
#include "engine/common.h"

#include <string.h>
#include <xxhash.h>

static void header_store(uint8_t *dst, const reel_record_header_t *h)
{
    reel_store_u64(dst + 0, h->checksum);
    reel_store_u64(dst + 8, h->body_checksum);
    reel_store_u64(dst + 16, h->prev_checksum);
    reel_store_u64(dst + 24, h->offset);
    reel_store_u64(dst + 32, h->time_ms);
    reel_store_u32(dst + 40, h->length);
    reel_store_u16(dst + 44, h->type);
    reel_store_u16(dst + 46, h->flags);
    reel_store_u32(dst + 48, h->batch_index);
    reel_store_u32(dst + 52, 0);
}

uint32_t reel_record_encode(uint8_t *dst, reel_record_header_t *h, const void *payload)
{
    REEL_ASSERT(h->length <= REEL_RECORD_PAYLOAD_MAX);
    REEL_ASSERT(h->type != 0);
    REEL_ASSERT((h->flags & ~REEL_RECORD_F_KNOWN) == 0);
    REEL_ASSERT(h->batch_index <= h->offset);
    h->body_checksum = XXH3_64bits(payload, h->length);
    header_store(dst, h);
    h->checksum = XXH3_64bits(dst + 8, REEL_RECORD_HEADER_SIZE - 8);
    reel_store_u64(dst, h->checksum);
    if (h->length > 0)
        memcpy(dst + REEL_RECORD_HEADER_SIZE, payload, h->length);
    return REEL_RECORD_HEADER_SIZE + h->length;
}

int reel_record_decode_header(const uint8_t *src, reel_record_header_t *out)
{
    uint64_t checksum = reel_load_u64(src);
    if (XXH3_64bits(src + 8, REEL_RECORD_HEADER_SIZE - 8) != checksum)
        return REEL_ECORRUPT;
    out->checksum = checksum;
    out->body_checksum = reel_load_u64(src + 8);
    out->prev_checksum = reel_load_u64(src + 16);
    out->offset = reel_load_u64(src + 24);
    out->time_ms = reel_load_u64(src + 32);
    out->length = reel_load_u32(src + 40);
    out->type = reel_load_u16(src + 44);
    out->flags = reel_load_u16(src + 46);
    out->batch_index = reel_load_u32(src + 48);
    /* A checksum match with nonsense fields is a writer bug or an attack on
     * the checksum: either way not a record we accept. */
    if (reel_load_u32(src + 52) != 0 || out->type == 0)
        return REEL_ECORRUPT;
    if ((out->flags & ~REEL_RECORD_F_KNOWN) != 0)
        return REEL_ECORRUPT;
    if (out->length > REEL_RECORD_PAYLOAD_MAX || out->batch_index > out->offset)
        return REEL_ECORRUPT;
    return 0;
}

bool reel_record_body_ok(const reel_record_header_t *h, const uint8_t *payload)
{
    return XXH3_64bits(payload, h->length) == h->body_checksum;
}

bool reel_record_is_padding(const uint8_t *p, uint64_t pos)
{
    uint64_t left = REEL_BLOCK_SIZE - pos % REEL_BLOCK_SIZE;
    if (pos % REEL_BLOCK_SIZE == 0)
        return false;
    REEL_ASSERT(pos % REEL_RECORD_ALIGN == 0);
    return reel_bytes_zero(p, left < REEL_RECORD_HEADER_SIZE ? left : REEL_RECORD_HEADER_SIZE);
}

bool reel_bytes_zero(const uint8_t *p, uint64_t n)
{
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != 0)
            return false;
    }
    for (; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}
