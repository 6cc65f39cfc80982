/*
 * event_fuzz.c: libFuzzer target for the event decoder (engine/event.h).
 * The first input byte picks the type (0..255, so unknown types come up
 * too); the rest is the payload, which libFuzzer hands over in a block of
 * its exact size, so ASan sees any read past its end. The decoder must
 * answer 0, REEL_ECORRUPT or REEL_EVERSION. An accepted payload must be
 * canonical (re-encoding gives back exactly its bytes, with
 * reel_event_encoded_size agreeing), and its JSON form must be one object
 * that jansson parses, of the right type; buffers one byte too small are
 * refused with -ENOSPC by both writers.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The JSON form parses back as {"offset", "type", "at", ...}. Integers are
 * read as reals: u64 fields may exceed jansson's int64. */
static void check_json(const reel_event_t *ev, const char *json, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL |
                                             JSON_REJECT_DUPLICATES, &err);
    REEL_ASSERT(root != NULL);
    REEL_ASSERT(json_is_object(root));
    const json_t *type = json_object_get(root, "type");
    REEL_ASSERT(json_is_string(type));
    REEL_ASSERT(strcmp(json_string_value(type), reel_event_type_name(ev->type)) == 0);
    REEL_ASSERT(json_is_number(json_object_get(root, "offset")));
    REEL_ASSERT(json_is_number(json_object_get(root, "at")));
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { JSON_CAP = 1 << 20, ENC_CAP = 64 << 10 };
    static char json[JSON_CAP];
    static uint8_t enc[ENC_CAP];
    reel_event_t ev;
    if (size == 0)
        return 0;
    uint16_t type = data[0];
    const uint8_t *payload = data + 1;
    size_t len = size - 1;
    int rc = reel_event_decode(type, payload, len, &ev);
    REEL_ASSERT(rc == 0 || rc == REEL_ECORRUPT || rc == REEL_EVERSION);
    if (rc == REEL_EVERSION) {
        REEL_ASSERT(len > 0);
        REEL_ASSERT(payload[0] != REEL_EVENT_VERSION);
    }
    if (rc != 0)
        return 0;
    REEL_ASSERT(reel_event_type_name(type) != NULL);
    REEL_ASSERT(ev.type == type);
    ev.offset = size;
    ev.at = len;

    REEL_ASSERT(reel_event_encoded_size(&ev) == len);
    int n = reel_event_encode(&ev, enc, sizeof(enc));
    REEL_ASSERT(n == (int)len);
    REEL_ASSERT(memcmp(enc, payload, len) == 0);
    REEL_ASSERT(reel_event_encode(&ev, enc, len - 1) == -ENOSPC);

    n = reel_event_to_json(&ev, json, sizeof(json));
    REEL_ASSERT(n > 0);
    REEL_ASSERT(strlen(json) == (size_t)n);
    check_json(&ev, json, (size_t)n);
    REEL_ASSERT(reel_event_to_json(&ev, json, (size_t)n) == -ENOSPC);
    return 0;
}
