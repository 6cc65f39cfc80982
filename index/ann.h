/*
 * ann.h: the vector store (int8 vectors with a scale, by id) and an HNSW
 * graph over some of its ids (Malkov & Yashunin 2016; the layout of
 * hnswlib: a flat layer-0 link array, upper layers per node).
 *
 * Vectors are L2-normalised then quantised: q[i] = round(x[i] / s), with
 * s = max|x| / 127, so a vector is dim bytes and a float. Similarity is the
 * dot product of the dequantised vectors (cosine, since they are unit
 * length): s_a * s_b * sum(q_a[i] * q_b[i]), exact on the stored vectors.
 *
 * HNSW: M links per node on upper layers, 2M on layer 0, the neighbour
 * selection heuristic (keep a candidate only if it is closer to the base
 * than to every neighbour kept; twins of the base, similarity 0.9995 or
 * more, are kept, at most half the list, and prune nothing) with the
 * pruned candidates filling what is left of the list (hnswlib's
 * keepPrunedConnections; copies of a kept neighbour last), so that many
 * identical vectors stay one walkable cluster with long links out of it;
 * levels drawn as floor(-ln(U) / ln(M)) from
 * a seeded PRNG, so a build is deterministic. Removal marks a node deleted:
 * it still routes searches and is never returned (hnswlib's mark_deleted);
 * reel_ann_insert of a removed id brings it back (revived). Vectors may
 * move after insertion (online learning): the graph keeps its links, which
 * stays good while moves are small.
 *
 * Threads: none inside. Inserts and removes need exclusive access; searches
 * may run concurrently with each other (each allocates its own visited set).
 * Bounds: REEL_IX_ANN_NODES_MAX nodes, or fewer (reel_ann_limit; then
 * insert answers -ENOSPC: the index starts a new graph, index/index.c),
 * REEL_IX_ANN_LEVELS_MAX layers, k <= REEL_IX_ANN_K_MAX, ef <= REEL_IX_ANN_EF_MAX.
 */
#ifndef REEL_INDEX_ANN_H
#define REEL_INDEX_ANN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/limits.h"

/* Vectors by id (0..cap). */
typedef struct reel_vecs {
    uint32_t dim;
    uint32_t cap;   /* ids with room */
    int8_t *q;      /* cap * dim, 64-byte aligned: at dim 64 a row is one cache line */
    float *scale;   /* cap; 0: no vector (all-zero) */
    /* The int8 dot product this CPU runs best (AVX2 where it has it, else
     * scalar); every choice gives the same exact integer. */
    int32_t (*dot)(const int8_t *a, const int8_t *b, uint32_t n);
} reel_vecs_t;

/* Empty store of dimension dim (1..REEL_IX_DIM_MAX). */
int reel_vecs_init(reel_vecs_t *v, uint32_t dim);
void reel_vecs_free(reel_vecs_t *v);
/* Room for ids up to id (doubling, bounded by max_ids). -ENOMEM, REEL_EUSAGE. */
int reel_vecs_reserve(reel_vecs_t *v, uint32_t id, uint32_t max_ids);
/* Normalises x (dim floats, not changed) and stores it quantised at id
 * (reserved). A zero x stores a zero vector (scale 0). */
void reel_vecs_set(reel_vecs_t *v, uint32_t id, const float *x);
/* Dequantised vector of id into out (dim floats). */
void reel_vecs_get(const reel_vecs_t *v, uint32_t id, float *out);
/* Cosine similarity of ids a and b. */
float reel_vecs_sim(const reel_vecs_t *v, uint32_t a, uint32_t b);
/* A query: x normalised and quantised into q8 (dim bytes) with *qscale. */
void reel_vecs_query(const reel_vecs_t *v, const float *x, int8_t *q8, float *qscale);
/* Similarity of a quantised query to id. */
float reel_vecs_sim_q(const reel_vecs_t *v, const int8_t *q8, float qscale, uint32_t id);
/* L2-normalises x (n floats) in place; returns the norm before. */
float reel_vec_normalize(float *x, uint32_t n);

typedef struct reel_ann reel_ann_t;

typedef struct reel_ann_hit {
    uint32_t id;
    float sim; /* cosine similarity to the query */
} reel_ann_hit_t;

/* Exact search, the reference the graph's recall is measured against: the
 * k (1..REEL_IX_ANN_K_MAX) ids of 1..last most similar to x (dim floats),
 * best first, leaving out every id skip (may be NULL) says true of; returns
 * how many went into out. A scan of every id: for tests and benchmarks. */
size_t reel_vecs_exact(const reel_vecs_t *v, const float *x, uint32_t last,
                       bool (*skip)(uint32_t id), size_t k, reel_ann_hit_t *out);

/* An empty graph over vecs (not owned; must outlive it). m 2..64 (0:
 * REEL_IX_ANN_M), ef_construction (0: REEL_IX_ANN_EF_CONSTRUCTION).
 * Errors: REEL_EUSAGE, -ENOMEM. */
int reel_ann_open(const reel_vecs_t *vecs, uint32_t m, uint32_t ef_construction, uint64_t seed,
                  reel_ann_t **out);
void reel_ann_close(reel_ann_t *a);
/* Bounds the graph to nodes_max nodes (1..REEL_IX_ANN_NODES_MAX, at least
 * its nodes now); REEL_IX_ANN_NODES_MAX when never called. */
void reel_ann_limit(reel_ann_t *a, uint32_t nodes_max);
/* Adds id (its vector is in vecs), or revives it when removed; a live id:
 * no-op. Errors: -ENOSPC (the graph is at its bound), -ENOMEM. */
int reel_ann_insert(reel_ann_t *a, uint32_t id);
/* Marks id deleted (never returned); absent: no-op. */
void reel_ann_remove(reel_ann_t *a, uint32_t id);
/* Whether id is a live node. */
bool reel_ann_contains(const reel_ann_t *a, uint32_t id);
/* The k (1..REEL_IX_ANN_K_MAX) live nodes most similar to x (dim floats),
 * best first, searching with width ef (raised to k; at most
 * REEL_IX_ANN_EF_MAX) into out; *n_out says how many. Errors: REEL_EUSAGE,
 * -ENOMEM. */
int reel_ann_search(const reel_ann_t *a, const float *x, size_t k, size_t ef,
                    reel_ann_hit_t *out, size_t *n_out);
/* Nodes (deleted ones included) and bytes of the graph (links, levels,
 * id map; not the vectors). */
uint32_t reel_ann_nodes(const reel_ann_t *a);
uint64_t reel_ann_bytes(const reel_ann_t *a);

#endif /* REEL_INDEX_ANN_H */
