/*
 * embed.c: the derived post vector (index.h, reel_index_embed;
 * docs/RANKING.md, "Post vectors"): feature hashing of the prompt's words,
 * adjacent word pairs and tags into dim buckets, each feature adding its
 * weight with a sign taken from the hash, then L2 normalisation. The same
 * prompt and tags always give the same vector, on any machine.
 */
#include "index/index.h"

#include <ctype.h>
#include <string.h>
#include <xxhash.h>

#include "engine/common.h"
#include "index/ann.h"

#define WORD_WEIGHT 1.0f
#define PAIR_WEIGHT 0.5f
#define TAG_WEIGHT 2.0f
#define WORD_LEN_MAX 64u

static void feature(const char *s, size_t len, uint64_t kind, float w, uint32_t dim, float *out)
{
    uint64_t h = XXH3_64bits_withSeed(s, len, kind);
    uint32_t i = (uint32_t)(h % dim);
    out[i] += (h >> 63) ? -w : w;
}

void reel_index_embed(const char *prompt, size_t prompt_len, const reel_str_t *tags,
                      uint32_t ntags, uint32_t dim, float *out)
{
    REEL_ASSERT(dim > 0 && dim <= REEL_IX_DIM_MAX);
    memset(out, 0, sizeof(float) * dim);
    char prev[WORD_LEN_MAX], cur[WORD_LEN_MAX], pair[2 * WORD_LEN_MAX + 1];
    size_t prev_len = 0, cur_len = 0;
    for (size_t i = 0; i <= prompt_len; i++) {
        unsigned char c = i < prompt_len ? (unsigned char)prompt[i] : ' ';
        if (isalnum(c) && c < 128) {
            if (cur_len < WORD_LEN_MAX)
                cur[cur_len++] = (char)tolower(c);
            continue;
        }
        if (cur_len < 2) {
            cur_len = 0;
            continue;
        }
        feature(cur, cur_len, 1, WORD_WEIGHT, dim, out);
        if (prev_len > 0) {
            memcpy(pair, prev, prev_len);
            pair[prev_len] = ' ';
            memcpy(pair + prev_len + 1, cur, cur_len);
            feature(pair, prev_len + 1 + cur_len, 2, PAIR_WEIGHT, dim, out);
        }
        memcpy(prev, cur, cur_len);
        prev_len = cur_len;
        cur_len = 0;
    }
    for (uint32_t t = 0; t < ntags; t++) {
        char low[REEL_TAG_LEN_MAX];
        uint32_t n = tags[t].len < REEL_TAG_LEN_MAX ? tags[t].len : REEL_TAG_LEN_MAX;
        for (uint32_t i = 0; i < n; i++)
            low[i] = (char)tolower((unsigned char)tags[t].ptr[i]);
        feature(low, n, 3, TAG_WEIGHT, dim, out);
    }
    reel_vec_normalize(out, dim);
}
