/*
 * render.h: the frame renderer of reel-render, the reference render
 * worker. It stands in for the video model: from a prompt (and the cameo
 * assets of the task) it makes a short deterministic procedural clip and
 * writes it as an animated GIF89a that any browser or player opens
 * (docs/RENDER.md).
 *
 * The same prompt and assets give the same clip, byte for byte, on every
 * machine: the parameters come from a 64-bit FNV-1a hash, the pixels from
 * the integer-only function of render_pixel.h, evaluated by C (render.c)
 * or CUDA (render.cu, built when nvcc exists). All memory is the caller's.
 */
#ifndef REEL_TOOLS_RENDER_H
#define REEL_TOOLS_RENDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/render/render_cuda.h"
#include "tools/render/render_pixel.h"

/* Limits of a clip: 640x480 by 240 frames is 70 MiB of indices at most. */
#define REEL_RENDER_WIDTH_MAX 640u
#define REEL_RENDER_HEIGHT_MAX 480u
#define REEL_RENDER_FRAMES_MAX 240u
/* Cameo assets that tint the palette (a task has at most 8 cameos). */
#define REEL_RENDER_ASSETS_MAX 8u
/* An embedding's dimension at most (the server's --dim must match). */
#define REEL_RENDER_DIM_MAX 1024u

/* A clip's shape. */
typedef struct reel_render_shape {
    uint32_t width;    /* pixels */
    uint32_t height;   /* pixels */
    uint32_t frames;   /* frames in the clip */
    uint32_t delay_cs; /* each frame's display time, 1/100 s (GIF's unit) */
} reel_render_shape_t;

/* The default clip: 48 frames of 160x120 at 25 frames a second (1.92 s). */
#define REEL_RENDER_SHAPE_DEFAULT {160u, 120u, 48u, 4u}

/* True when the shape is within the limits. */
bool reel_render_shape_ok(const reel_render_shape_t *s);

/* 64-bit FNV-1a of p[0..n), continuing from h (start with
 * REEL_RENDER_FNV_SEED). */
#define REEL_RENDER_FNV_SEED 0xcbf29ce484222325ull
uint64_t reel_render_hash(uint64_t h, const void *p, size_t n);

/* The clip's parameters and its 256-colour palette (palette: 768 bytes,
 * RGB) from the prompt (len bytes) and the cameo assets (NULL entries are
 * skipped): the prompt seeds the waves and the base hues, each asset
 * tints a band of the palette. */
void reel_render_params_init(reel_render_params_t *p, uint8_t palette[768], const char *prompt,
                             size_t len, const char *const *assets, uint32_t nassets,
                             const reel_render_shape_t *shape);

/* Renders the clip's frames with C into pixels (width*height*frames
 * palette indices, frame after frame, rows top down). abort (may be NULL)
 * is read between frames: when it becomes true the call stops and returns
 * -ECANCELED. Returns 0. */
int reel_render_frames_c(const reel_render_params_t *p, uint32_t frames, uint8_t *pixels,
                         const atomic_bool *abort);

/* The same with CUDA: render_cuda.h. */

/* Writes the clip as an animated GIF89a (global palette, looping forever,
 * one LZW-coded image per frame) to f. Returns 0, or -EIO when a write
 * failed. */
int reel_gif_write(FILE *f, const reel_render_shape_t *shape, const uint8_t palette[768],
                   const uint8_t *pixels);

/* A unit embedding of dim floats from the prompt: each word (letters and
 * digits, folded to lower case) hashed to one coordinate with a sign, then
 * normalised. A prompt without a word gets e[0] = 1. dim: 1..DIM_MAX. */
void reel_render_embedding(const char *prompt, size_t len, uint32_t dim, float *out);

#endif /* REEL_TOOLS_RENDER_H */
