/*
 * render.cu: the CUDA frame renderer (render.h), built only when nvcc
 * exists (Makefile). One thread per pixel of every frame evaluates the very
 * function the C renderer evaluates (render_pixel.h, integer only), so the
 * frames are the same bit for bit; a test compares them where a GPU is.
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tools/render/render_cuda.h"

__global__ static void render_kernel(reel_render_params_t p, uint32_t frames, uint8_t *out)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint64_t frame = (uint64_t)p.width * p.height;
    if (i >= frame * frames)
        return;
    uint32_t t = (uint32_t)(i / frame);
    uint32_t r = (uint32_t)(i % frame);
    out[i] = (uint8_t)reel_render_pixel(&p, r % p.width, r / p.width, t);
}

extern "C" bool reel_render_cuda_available(char *why, size_t why_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        if (why != NULL && why_len > 0)
            snprintf(why, why_len, "no CUDA device (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return false;
    }
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%d CUDA device(s)", n);
    return true;
}

extern "C" int reel_render_frames_cuda(const reel_render_params_t *p, uint32_t frames,
                                       uint8_t *pixels)
{
    if (!reel_render_cuda_available(NULL, 0))
        return REEL_RENDER_ENOGPU;
    size_t n = (size_t)p->width * p->height * frames;
    uint8_t *dev = NULL;
    if (cudaMalloc((void **)&dev, n) != cudaSuccess)
        return -EIO;
    unsigned threads = 256;
    unsigned blocks = (unsigned)((n + threads - 1) / threads);
    render_kernel<<<blocks, threads>>>(*p, frames, dev);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaMemcpy(pixels, dev, n, cudaMemcpyDeviceToHost);
    cudaFree(dev);
    return e == cudaSuccess ? 0 : -EIO;
}
