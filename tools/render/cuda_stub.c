/*
 * cuda_stub.c: the CUDA entry points of render.h in a build without nvcc
 * (the Makefile links this file instead of render.cu): no GPU path, so the
 * worker renders with C.
 */
#include "tools/render/render_cuda.h"

#include <stdio.h>

int reel_render_frames_cuda(const reel_render_params_t *p, uint32_t frames, uint8_t *pixels)
{
    (void)p;
    (void)frames;
    (void)pixels;
    return REEL_RENDER_ENOGPU;
}

bool reel_render_cuda_available(char *why, size_t why_len)
{
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "built without CUDA (nvcc was not found at build time)");
    return false;
}
