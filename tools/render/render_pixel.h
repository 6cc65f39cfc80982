/*
 * render_pixel.h: the per-pixel function of reel-render's procedural clip,
 * shared word for word by the C renderer (render.c) and the CUDA one
 * (render.cu), so that both produce the same frames bit for bit.
 *
 * Invariants.
 *  1. Integer only: unsigned 32-bit arithmetic (wrapping, defined in C and
 *     CUDA alike) and signed values whose products stay far below 2^31. No
 *     floating point, whose rounding differs between a CPU and a GPU.
 *  2. Pure: the pixel (x, y) of frame t depends on the parameters and on
 *     (x, y, t) only, never on another pixel or on the order of evaluation.
 *
 * This header is C11 and C++ (nvcc) at once: no designated initialisers,
 * no compound literals.
 */
#ifndef REEL_TOOLS_RENDER_PIXEL_H
#define REEL_TOOLS_RENDER_PIXEL_H

#include <stdint.h>

#ifdef __CUDACC__
#define REEL_RENDER_FN __host__ __device__ static inline
#else
#define REEL_RENDER_FN static inline
#endif

/* Spatial and temporal frequencies of the clip's four waves and the path
 * of its light spot, derived from a hash of the prompt (render.c). */
#define REEL_RENDER_K 12

/* What the per-pixel function reads: plain words, copied to the GPU as is. */
typedef struct reel_render_params {
    uint32_t width;             /* pixels, 1..REEL_RENDER_WIDTH_MAX */
    uint32_t height;            /* pixels, 1..REEL_RENDER_HEIGHT_MAX */
    uint32_t k[REEL_RENDER_K];  /* frequencies, each 1..8 (render.c) */
    uint32_t mix;               /* 8-bit pattern xor'd into the index */
} reel_render_params_t;

/* A triangle wave of period 512 and amplitude 0..255. */
REEL_RENDER_FN uint32_t reel_render_tri(uint32_t u)
{
    uint32_t v = u & 511u;
    return v < 256u ? v : 511u - v;
}

/* The palette index (0..255) of pixel (x, y) in frame t. */
REEL_RENDER_FN uint32_t reel_render_pixel(const reel_render_params_t *p, uint32_t x, uint32_t y,
                                          uint32_t t)
{
    const uint32_t *k = p->k;
    uint32_t a = reel_render_tri(x * k[0] + t * k[1] * 4u);
    uint32_t b = reel_render_tri(y * k[2] + 4096u - t * k[3] * 3u);
    uint32_t c = reel_render_tri((x + y) * k[4] / 2u + t * k[5] * 2u);
    /* A spot that wanders over the frame: its centre follows two waves. */
    int32_t cx = (int32_t)(reel_render_tri(t * k[6] * 3u) * p->width / 256u);
    int32_t cy = (int32_t)(reel_render_tri(t * k[7] * 2u + 128u) * p->height / 256u);
    int32_t dx = (int32_t)x - cx;
    int32_t dy = (int32_t)y - cy;
    uint32_t r2 = (uint32_t)(dx * dx + dy * dy);
    uint32_t d = reel_render_tri(r2 * k[8] / 64u + t * k[9] * 5u);
    uint32_t glow = r2 < 400u * k[10] ? (400u * k[10] - r2) * 64u / (400u * k[10]) : 0u;
    uint32_t v = (a + b + c + d) / 4u + glow;
    v = v > 255u ? 255u : v;
    /* 16 levels (runs that LZW codes well), and bands that move with
     * time, marked by the prompt's own low nibble. */
    uint32_t band = ((y + t * k[11]) / 8u) & 1u;
    return ((v & 0xf0u) | (band ? p->mix & 0x0fu : 0u)) & 255u;
}

#endif /* REEL_TOOLS_RENDER_PIXEL_H */
