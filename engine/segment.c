/*
 * segment.c: segment headers, names, and the scan that tells a torn tail
 * from corruption.
 *
 * Why the scan can tell them apart. The writer writes a batch, waits for
 * fdatasync, and only then writes the next batch (log.c, writer_loop). Each
 * record names its batch's first offset (offset - batch_index). So if a
 * record R is whole and R's batch starts after offset N, then N was durable,
 * and perhaps acknowledged, before R was written: a bad N is corruption,
 * never a torn write. A bad record with no such witness after it can only
 * be part of the last, unfinished batch: that is a torn tail, and cutting
 * it loses nothing acknowledged.
 */
#include "engine/segment.h"
#include "engine/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

void reel_segment_header_encode(uint8_t *block, const reel_segment_header_t *h)
{
    memset(block, 0, REEL_SEGMENT_HEADER_SIZE);
    memcpy(block, REEL_SEGMENT_MAGIC, 8);
    reel_store_u32(block + 8, h->version);
    reel_store_u32(block + 12, h->block_size);
    reel_store_u64(block + 16, h->segment_size);
    reel_store_u64(block + 24, h->first_offset);
    reel_store_u64(block + 32, h->prev_checksum);
    reel_store_u64(block + 40, h->created_ms);
    reel_store_u64(block + 48, XXH3_64bits(block, 48));
}

int reel_segment_header_decode(const uint8_t *block, reel_segment_header_t *out)
{
    if (memcmp(block, REEL_SEGMENT_MAGIC, 8) != 0)
        return REEL_ECORRUPT;
    out->version = reel_load_u32(block + 8);
    if (XXH3_64bits(block, 48) != reel_load_u64(block + 48))
        return REEL_ECORRUPT;
    if (out->version != REEL_FORMAT_VERSION)
        return REEL_EVERSION;
    out->block_size = reel_load_u32(block + 12);
    out->segment_size = reel_load_u64(block + 16);
    out->first_offset = reel_load_u64(block + 24);
    out->prev_checksum = reel_load_u64(block + 32);
    out->created_ms = reel_load_u64(block + 40);
    if (out->block_size != REEL_BLOCK_SIZE)
        return REEL_ECORRUPT;
    if (out->segment_size < REEL_SEGMENT_SIZE_MIN || out->segment_size > REEL_SEGMENT_SIZE_MAX ||
        out->segment_size % REEL_BLOCK_SIZE != 0)
        return REEL_ECORRUPT;
    return 0;
}

void reel_segment_name(char *buf, uint64_t first_offset)
{
    snprintf(buf, 32, "%020" PRIu64 ".seg", first_offset);
}

bool reel_segment_parse_name(const char *name, const char *suffix, uint64_t *first_offset)
{
    size_t suffix_len = strlen(suffix);
    uint64_t value = 0;
    if (strlen(name) != 20 + suffix_len || strcmp(name + 20, suffix) != 0)
        return false;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *first_offset = value;
    return true;
}

/* End of the last block in [from, size) that holds a non-zero byte. */
static uint64_t dirty_end_from(const uint8_t *image, uint64_t size, uint64_t from)
{
    uint64_t block = from - from % REEL_BLOCK_SIZE;
    uint64_t dirty = from;
    for (; block < size; block += REEL_BLOCK_SIZE) {
        uint64_t len = size - block < REEL_BLOCK_SIZE ? size - block : REEL_BLOCK_SIZE;
        if (!reel_bytes_zero(image + block, len))
            dirty = block + len;
    }
    return dirty;
}

/* Looks past a bad record at bad_pos (expected offset n) for a whole record
 * whose batch began after n: proof that n had been made durable. Returns its
 * position, or 0 when there is none. Only non-zero blocks are searched. */
static uint64_t find_witness(const uint8_t *image, uint64_t size, uint64_t bad_pos, uint64_t n)
{
    for (uint64_t pos = bad_pos + REEL_RECORD_ALIGN; pos + REEL_RECORD_HEADER_SIZE <= size;
         pos += REEL_RECORD_ALIGN) {
        if (pos % REEL_BLOCK_SIZE == 0 && reel_bytes_zero(image + pos, REEL_BLOCK_SIZE)) {
            pos += REEL_BLOCK_SIZE - REEL_RECORD_ALIGN;
            continue;
        }
        uint64_t offset = reel_load_u64(image + pos + 24);
        if (offset < n || offset - n > (1ull << 40))
            continue; /* cheap filter before the checksum */
        reel_record_header_t h;
        if (reel_record_decode_header(image + pos, &h) != 0)
            continue;
        if (h.offset - h.batch_index > n)
            return pos;
    }
    return 0;
}

/* The record at pos is acceptable as offset s->next_offset: its header is
 * whole, it is in order, it chains, and its body is whole. */
static int check_record(const uint8_t *image, uint64_t size, uint64_t pos, const reel_scan_t *s,
                        reel_record_header_t *h, char *why, size_t why_len)
{
    if (reel_record_decode_header(image + pos, h) != 0) {
        snprintf(why, why_len, "bad record header");
        return REEL_ECORRUPT;
    }
    if (h->offset != s->next_offset) {
        snprintf(why, why_len, "record has offset %" PRIu64 ", expected %" PRIu64, h->offset,
                 s->next_offset);
        return REEL_ECORRUPT;
    }
    if (pos + REEL_RECORD_HEADER_SIZE + h->length > size) {
        snprintf(why, why_len, "record runs past the end of the segment");
        return REEL_ECORRUPT;
    }
    if (!reel_record_body_ok(h, image + pos + REEL_RECORD_HEADER_SIZE)) {
        snprintf(why, why_len, "payload checksum mismatch");
        return REEL_ECORRUPT;
    }
    if (h->prev_checksum != s->last_checksum) {
        snprintf(why, why_len, "hash chain broken before offset %" PRIu64, h->offset);
        return REEL_ECHAIN;
    }
    return 0;
}

/* Decides what a stop at pos means; fills status, why and dirty_end. */
static void classify_stop(const uint8_t *image, uint64_t size, bool last, uint64_t pos, int rc,
                          const char *why, reel_scan_t *s)
{
    s->bad_pos = pos;
    s->bad_offset = s->next_offset;
    s->dirty_end = dirty_end_from(image, size, pos);
    if (rc == 0 && s->dirty_end <= pos) {
        s->status = 0; /* zeros to the end: the clean end of the data */
        return;
    }
    if (!last) {
        s->status = rc != 0 ? rc : REEL_ECORRUPT;
        snprintf(s->why, sizeof(s->why), "%s (not in the last segment)",
                 rc != 0 ? why : "data after the end of the records");
        return;
    }
    uint64_t witness = find_witness(image, size, pos, s->next_offset);
    if (witness != 0) {
        s->status = rc != 0 ? rc : REEL_ECORRUPT;
        snprintf(s->why, sizeof(s->why), "%s; a durable record follows at byte %" PRIu64,
                 rc != 0 ? why : "a gap of zeros", witness);
        return;
    }
    s->status = REEL_ETORN;
    snprintf(s->why, sizeof(s->why), "torn tail: %s", rc != 0 ? why : "partial last batch");
}

/* Keeps whole append groups only. In the last segment, an unfinished group
 * at the end is a torn tail and is cut with it; elsewhere it is corruption. */
static void finish_groups(reel_scan_t *s, const reel_scan_t *group, bool last)
{
    if (s->status == 0 && group->end_pos != s->end_pos) {
        s->bad_pos = group->end_pos;
        s->bad_offset = group->next_offset;
        s->status = last ? REEL_ETORN : REEL_ECORRUPT;
        snprintf(s->why, sizeof(s->why), "%s", last ? "torn tail: unfinished append group"
                                                    : "unfinished append group in a sealed segment");
    }
    if (s->status != REEL_ETORN)
        return;
    uint64_t dirty_end = s->dirty_end > s->end_pos ? s->dirty_end : s->end_pos;
    s->next_offset = group->next_offset;
    s->end_pos = group->end_pos;
    s->last_checksum = group->last_checksum;
    s->last_time_ms = group->last_time_ms;
    s->records = group->records;
    s->bad_pos = group->end_pos;
    s->bad_offset = group->next_offset;
    s->dirty_end = dirty_end;
}

int reel_segment_scan(const uint8_t *image, uint64_t size, const reel_segment_header_t *hdr,
                      bool last, reel_scan_record_cb cb, void *ctx, reel_scan_t *s)
{
    uint64_t pos = REEL_SEGMENT_HEADER_SIZE;
    reel_scan_t group; /* the state after the last complete group */
    REEL_ASSERT(size % REEL_BLOCK_SIZE == 0);
    REEL_ASSERT(size >= REEL_SEGMENT_HEADER_SIZE);
    memset(s, 0, sizeof(*s));
    s->next_offset = hdr->first_offset;
    s->last_checksum = hdr->prev_checksum;
    s->end_pos = pos;
    group = *s;
    for (;;) {
        if (pos + REEL_RECORD_HEADER_SIZE > size) {
            classify_stop(image, size, last, size, 0, "", s);
            break;
        }
        if (reel_record_is_padding(image + pos, pos)) {
            pos = reel_align_up(pos, REEL_BLOCK_SIZE);
            continue;
        }
        if (reel_bytes_zero(image + pos, REEL_RECORD_HEADER_SIZE)) {
            classify_stop(image, size, last, pos, 0, "", s);
            break;
        }
        reel_record_header_t h;
        char why[128];
        int rc = check_record(image, size, pos, s, &h, why, sizeof(why));
        if (rc != 0) {
            classify_stop(image, size, last, pos, rc, why, s);
            break;
        }
        reel_record_t rec = {h.offset, h.time_ms, h.type, h.flags, h.length,
                             image + pos + REEL_RECORD_HEADER_SIZE, h.checksum};
        if (cb != NULL && (rc = cb(ctx, &rec, pos)) != 0) {
            s->status = rc;
            return rc;
        }
        pos += reel_align_up(REEL_RECORD_HEADER_SIZE + h.length, REEL_RECORD_ALIGN);
        s->next_offset = h.offset + 1;
        s->last_checksum = h.checksum;
        s->last_time_ms = h.time_ms;
        s->records++;
        s->end_pos = pos;
        if (!(h.flags & REEL_RECORD_F_GROUP_CONT)) {
            group = *s;
        }
    }
    finish_groups(s, &group, last);
    return s->status;
}
