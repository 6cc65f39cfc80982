// hnswlib_shim.cpp: hnswlib (Debian libhnswlib-dev, header-only C++) behind
// a C interface, for the baseline of `reel bench feed` only: built and
// linked into build/reel when /usr/include/hnswlib/hnswlib.h exists (the
// Makefile's rule for it), never part of the engine.
#include <hnswlib/hnswlib.h>

#include <cstddef>
#include <cstdint>
#include <new>

namespace {
struct shim {
    hnswlib::InnerProductSpace space;
    hnswlib::HierarchicalNSW<float> alg;
    shim(size_t dim, size_t cap, size_t m, size_t efc, uint64_t seed)
        : space(dim), alg(&space, cap, m, efc, (size_t)seed) {}
};
} // namespace

extern "C" {

// An index of n vectors of dim floats (row i labelled ids[i]); M links a
// node (2M at layer 0, as ours), efConstruction efc. NULL on failure.
void *reel_hnsw_build(const float *vecs, const uint32_t *ids, size_t n, size_t dim, size_t m,
                      size_t efc, uint64_t seed)
{
    try {
        shim *s = new shim(dim, n, m, efc, seed);
        for (size_t i = 0; i < n; i++)
            s->alg.addPoint(vecs + i * dim, (hnswlib::labeltype)ids[i]);
        return s;
    } catch (...) {
        return nullptr;
    }
}

// The k nearest (by inner product) to q at search width ef, best first,
// into ids; returns how many.
size_t reel_hnsw_query(void *h, const float *q, size_t k, size_t ef, uint32_t *ids)
{
    shim *s = static_cast<shim *>(h);
    try {
        s->alg.setEf(ef);
        auto r = s->alg.searchKnn(q, k);
        size_t n = r.size();
        for (size_t i = n; i > 0; i--) { // the queue pops the farthest first
            ids[i - 1] = (uint32_t)r.top().second;
            r.pop();
        }
        return n;
    } catch (...) {
        return 0;
    }
}

void reel_hnsw_free(void *h)
{
    delete static_cast<shim *>(h);
}
}
