/*
 * render_cuda.h: the CUDA renderer's entry points (render.cu, or
 * cuda_stub.c in a build without nvcc). C and C++ alike, so that nvcc
 * compiles render.cu against the very declarations C code calls.
 */
#ifndef REEL_TOOLS_RENDER_CUDA_H
#define REEL_TOOLS_RENDER_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/render/render_pixel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* No CUDA build, or no GPU present. */
#define REEL_RENDER_ENOGPU (-1000)

/* Renders the clip's frames with CUDA into pixels (width*height*frames
 * palette indices, as reel_render_frames_c): 0, REEL_RENDER_ENOGPU, or
 * -EIO on a CUDA error. */
int reel_render_frames_cuda(const reel_render_params_t *p, uint32_t frames, uint8_t *pixels);
/* True when reel_render_frames_cuda can run here (a CUDA build and a GPU);
 * why (may be NULL) gets a line saying which. */
bool reel_render_cuda_available(char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif /* REEL_TOOLS_RENDER_CUDA_H */
