/*
 * render.c: the C frame renderer, the clip's parameters and palette, the
 * GIF89a encoder (LZW) and the prompt's embedding (render.h).
 *
 * The GIF. One global colour table of 256 entries, the NETSCAPE2.0
 * application extension (loop forever), then per frame a graphic control
 * extension (the delay) and a full-size image coded with variable-length
 * LZW (minimum code size 8: clear 256, end 257, codes of 9 to 12 bits,
 * a clear code when the table reaches 4095 entries), in sub-blocks of at
 * most 255 bytes. The encoder follows the decoder's rule for growing the
 * code size (the decoder adds its entry one code later than the encoder,
 * so the encoder grows when its last code reaches 2^size, and once more
 * before the end code when the decoder's pending entry would).
 */
#include "tools/render/render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"

bool reel_render_shape_ok(const reel_render_shape_t *s)
{
    return s->width >= 1 && s->width <= REEL_RENDER_WIDTH_MAX && s->height >= 1 &&
           s->height <= REEL_RENDER_HEIGHT_MAX && s->frames >= 1 &&
           s->frames <= REEL_RENDER_FRAMES_MAX && s->delay_cs >= 1 && s->delay_cs <= 1000;
}

uint64_t reel_render_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* splitmix64: the parameters' stream from the prompt's hash. */
static uint64_t mix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A hue (0..1535 around the wheel) at full saturation, scaled by level. */
static void hue_rgb(uint32_t hue, uint32_t level, uint8_t rgb[3])
{
    uint32_t h = hue % 1536u, f = h % 256u, r, g, b;
    switch (h / 256u) {
    case 0: r = 255; g = f; b = 0; break;
    case 1: r = 255 - f; g = 255; b = 0; break;
    case 2: r = 0; g = 255; b = f; break;
    case 3: r = 0; g = 255 - f; b = 255; break;
    case 4: r = f; g = 0; b = 255; break;
    default: r = 255; g = 0; b = 255 - f; break;
    }
    REEL_ASSERT(level <= 255);
    rgb[0] = (uint8_t)(r * level / 255u);
    rgb[1] = (uint8_t)(g * level / 255u);
    rgb[2] = (uint8_t)(b * level / 255u);
}

/* Palette: index i walks from dark through the prompt's hues to light;
 * asset j tints the band [32j, 32j+32) towards its own hue. */
static void palette_init(uint8_t pal[768], uint64_t *s, const char *const *assets,
                         uint32_t nassets)
{
    uint32_t hue0 = (uint32_t)(mix64(s) % 1536u), span = 256u + (uint32_t)(mix64(s) % 1024u);
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t level = 40u + i * 215u / 255u;
        hue_rgb(hue0 + i * span / 256u, level, &pal[3 * i]);
    }
    for (uint32_t j = 0; j < nassets && j < REEL_RENDER_ASSETS_MAX; j++) {
        if (assets[j] == NULL)
            continue;
        uint64_t h = reel_render_hash(REEL_RENDER_FNV_SEED, assets[j], strlen(assets[j]));
        uint8_t tint[3];
        hue_rgb((uint32_t)(h % 1536u), 255u, tint);
        for (uint32_t i = 32u * j; i < 32u * j + 32u; i++)
            for (uint32_t c = 0; c < 3; c++)
                pal[3 * i + c] = (uint8_t)((pal[3 * i + c] + tint[c]) / 2u);
    }
}

void reel_render_params_init(reel_render_params_t *p, uint8_t palette[768], const char *prompt,
                             size_t len, const char *const *assets, uint32_t nassets,
                             const reel_render_shape_t *shape)
{
    REEL_ASSERT(reel_render_shape_ok(shape));
    REEL_ASSERT(prompt != NULL || len == 0);
    uint64_t s = reel_render_hash(REEL_RENDER_FNV_SEED, prompt, len);
    memset(p, 0, sizeof(*p));
    p->width = shape->width;
    p->height = shape->height;
    /* Low frequencies: smooth waves (a period of 64 pixels or more), which
     * LZW codes in long runs. */
    for (uint32_t i = 0; i < REEL_RENDER_K; i++)
        p->k[i] = 1u + (uint32_t)(mix64(&s) % 8u);
    p->mix = (uint32_t)(mix64(&s) & 0xffu);
    palette_init(palette, &s, assets, nassets);
}

int reel_render_frames_c(const reel_render_params_t *p, uint32_t frames, uint8_t *pixels,
                         const atomic_bool *abort)
{
    REEL_ASSERT(p->width >= 1 && p->width <= REEL_RENDER_WIDTH_MAX);
    REEL_ASSERT(p->height >= 1 && p->height <= REEL_RENDER_HEIGHT_MAX);
    REEL_ASSERT(frames <= REEL_RENDER_FRAMES_MAX);
    size_t i = 0;
    for (uint32_t t = 0; t < frames; t++) {
        if (abort != NULL && atomic_load(abort))
            return -ECANCELED;
        for (uint32_t y = 0; y < p->height; y++)
            for (uint32_t x = 0; x < p->width; x++)
                pixels[i++] = (uint8_t)reel_render_pixel(p, x, y, t);
    }
    return 0;
}

/* ---- GIF89a ---- */

#define LZW_MIN_BITS 8u
#define LZW_CLEAR 256u
#define LZW_END 257u
#define LZW_CODES_MAX 4096u
/* Open addressing over (prefix, byte) -> code: twice the codes, a power
 * of two, so a probe always ends at a free slot. */
#define LZW_HASH_SLOTS 8192u

typedef struct gif_out {
    FILE *f;
    uint8_t block[256]; /* block[0]: length of the sub-block being filled */
    uint32_t bits;      /* pending bits, low first */
    uint32_t nbits;
    bool failed;
} gif_out_t;

typedef struct lzw {
    uint32_t key[LZW_HASH_SLOTS]; /* (prefix << 8 | byte) + 1; 0: free */
    uint16_t code[LZW_HASH_SLOTS];
} lzw_t;

static void gif_bytes(gif_out_t *o, const void *p, size_t n)
{
    if (fwrite(p, 1, n, o->f) != n)
        o->failed = true;
}

static void gif_flush_block(gif_out_t *o)
{
    if (o->block[0] > 0)
        gif_bytes(o, o->block, 1u + o->block[0]);
    o->block[0] = 0;
}

static void gif_code(gif_out_t *o, uint32_t code, uint32_t size)
{
    REEL_ASSERT(size >= LZW_MIN_BITS + 1 && size <= 12);
    REEL_ASSERT(code < (1u << size));
    o->bits |= code << o->nbits;
    o->nbits += size;
    while (o->nbits >= 8) {
        o->block[1 + o->block[0]++] = (uint8_t)o->bits;
        o->bits >>= 8;
        o->nbits -= 8;
        if (o->block[0] == 255)
            gif_flush_block(o);
    }
}

static uint32_t lzw_slot(const lzw_t *z, uint32_t key)
{
    uint32_t h = (key * 2654435761u) >> 19; /* 13 bits */
    while (z->key[h] != 0 && z->key[h] != key)
        h = (h + 1) & (LZW_HASH_SLOTS - 1);
    return h;
}

/* One image's LZW data (after its minimum code size byte). */
static void gif_lzw(gif_out_t *o, lzw_t *z, const uint8_t *px, size_t n)
{
    uint32_t size = LZW_MIN_BITS + 1, last = LZW_END, cur = px[0];
    memset(z->key, 0, sizeof(z->key));
    gif_code(o, LZW_CLEAR, size);
    for (size_t i = 1; i < n; i++) {
        uint32_t key = ((cur << 8) | px[i]) + 1u, h = lzw_slot(z, key);
        if (z->key[h] == key) {
            cur = z->code[h];
            continue;
        }
        gif_code(o, cur, size);
        z->key[h] = key;
        z->code[h] = (uint16_t)++last;
        if (last >= (1u << size) && size < 12)
            size++;
        if (last == LZW_CODES_MAX - 1) {
            gif_code(o, LZW_CLEAR, size);
            memset(z->key, 0, sizeof(z->key));
            size = LZW_MIN_BITS + 1;
            last = LZW_END;
        }
        cur = px[i];
    }
    gif_code(o, cur, size);
    /* The decoder adds an entry on reading cur: it may grow first. */
    if (last + 1 >= (1u << size) && size < 12)
        size++;
    gif_code(o, LZW_END, size);
    if (o->nbits > 0) { /* the last, partial byte */
        o->block[1 + o->block[0]++] = (uint8_t)o->bits;
        o->bits = o->nbits = 0;
    }
    gif_flush_block(o);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

int reel_gif_write(FILE *f, const reel_render_shape_t *shape, const uint8_t palette[768],
                   const uint8_t *pixels)
{
    REEL_ASSERT(reel_render_shape_ok(shape));
    lzw_t *z = malloc(sizeof(*z));
    if (z == NULL)
        return -ENOMEM;
    gif_out_t o = {.f = f};
    uint8_t head[13] = {'G', 'I', 'F', '8', '9', 'a'};
    put16(head + 6, shape->width);
    put16(head + 8, shape->height);
    head[10] = 0xf7; /* global table of 2^8 colours, 8 bits a primary */
    gif_bytes(&o, head, sizeof(head));
    gif_bytes(&o, palette, 768);
    static const uint8_t loop[19] = {0x21, 0xff, 11, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
                                     'E', '2', '.', '0', 3, 1, 0, 0, 0};
    gif_bytes(&o, loop, sizeof(loop));
    size_t frame = (size_t)shape->width * shape->height;
    for (uint32_t t = 0; t < shape->frames && !o.failed; t++) {
        uint8_t gce[8] = {0x21, 0xf9, 4, 0x04, 0, 0, 0, 0}; /* disposal: leave */
        put16(gce + 4, shape->delay_cs);
        uint8_t desc[11] = {0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0, LZW_MIN_BITS};
        put16(desc + 5, shape->width);
        put16(desc + 7, shape->height);
        gif_bytes(&o, gce, sizeof(gce));
        gif_bytes(&o, desc, sizeof(desc));
        gif_lzw(&o, z, pixels + frame * t, frame);
        gif_bytes(&o, "", 1); /* block terminator */
    }
    gif_bytes(&o, "\x3b", 1);
    free(z);
    if (fflush(f) != 0)
        o.failed = true;
    return o.failed ? -EIO : 0;
}

/* ---- the embedding ---- */

static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

void reel_render_embedding(const char *prompt, size_t len, uint32_t dim, float *out)
{
    REEL_ASSERT(dim >= 1 && dim <= REEL_RENDER_DIM_MAX);
    double sum = 0;
    memset(out, 0, sizeof(*out) * dim);
    for (size_t i = 0; i < len;) {
        if (!word_byte((unsigned char)prompt[i])) {
            i++;
            continue;
        }
        uint64_t h = REEL_RENDER_FNV_SEED;
        for (; i < len && word_byte((unsigned char)prompt[i]); i++) {
            unsigned char c = (unsigned char)prompt[i];
            c = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
            h = reel_render_hash(h, &c, 1);
        }
        out[h % dim] += (h >> 63) ? -1.0f : 1.0f;
    }
    for (uint32_t i = 0; i < dim; i++)
        sum += (double)out[i] * out[i];
    if (sum == 0) {
        out[0] = 1.0f;
        return;
    }
    double inv = 1.0 / __builtin_sqrt(sum);
    for (uint32_t i = 0; i < dim; i++)
        out[i] = (float)(out[i] * inv);
}
