/*
 * import_fuzz.c: libFuzzer target for `reel import`'s line readers
 * (tools/import_read.h): MovieLens 100K (u.genre, u.item, u.data),
 * CollegeMsg, and NDJSON of API commands.
 *
 * Input: the first byte picks the reader (low two bits: 0 CollegeMsg,
 * 1 NDJSON, 2 and 3 MovieLens); the rest is the file. For MovieLens it is
 * split at "\n%%\n" into u.genre, u.item and u.data (2), or u.data, u.item
 * and u.genre (3); a part not given is a small valid one, so each file is
 * reached with the others sane. The
 * readers take paths, so the parts are written to a directory of their
 * own (under TMPDIR, /dev/shm when there is one) made once per process.
 *
 * Each input is read twice, leniently and with --strict. Checked:
 *   - the answer is one the header lists (0, REEL_EUSAGE under strict,
 *     REEL_ECORRUPT for a MovieLens set unusable as a whole);
 *   - strict accepts exactly the inputs without a bad line, and then
 *     gives the same plan as the lenient read;
 *   - a plan is consistent: ops in time order (first_at_ms the first),
 *     times in 1..2^53-1, the k-th USER_CREATE makes local user k and the
 *     k-th POST_CREATE local post k, and every op names only users and
 *     posts already made (a follow never a self-follow); handles, prompts
 *     (valid UTF-8), tags and URIs within the engine's limits;
 *   - NDJSON: good lines plus bad lines are the non-blank lines, commands
 *     in file order with times never going back, every string readable,
 *     idempotency keys as the engine takes them (1..64 printable ASCII).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common.h"
#include "tools/import_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char path_cm[300], path_nd[300], path_genre[300], path_item[300], path_data[300];
static FILE *devnull;

static const char default_genre[] = "unknown|0\nAction|1\nComedy|2\n\n";
static const char default_item[] =
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n"
    "2|Caf\xe9 (1996)|01-Jan-1996||http://y|0|1|1\n";
static const char default_data[] = "1\t1\t5\t881250949\n2\t2\t3\t881250950\n1\t2\t4\t881250951\n";

/* At exit: the directory and its five files go. */
static void remove_dir(void)
{
    const char *files[] = {path_cm, path_nd, path_genre, path_item, path_data};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(dir);
}

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/reel-import-fuzz-XXXXXX", base ? base : "/tmp");
    REEL_ASSERT(mkdtemp(dir) != NULL);
    snprintf(path_cm, sizeof(path_cm), "%s/CollegeMsg.txt", dir);
    snprintf(path_nd, sizeof(path_nd), "%s/cmds.ndjson", dir);
    snprintf(path_genre, sizeof(path_genre), "%s/u.genre", dir);
    snprintf(path_item, sizeof(path_item), "%s/u.item", dir);
    snprintf(path_data, sizeof(path_data), "%s/u.data", dir);
    devnull = fopen("/dev/null", "w");
    REEL_ASSERT(devnull != NULL);
    atexit(remove_dir);
}

static void put(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "w");
    REEL_ASSERT(f != NULL);
    REEL_ASSERT(fwrite(p, 1, n, f) == n);
    REEL_ASSERT(fclose(f) == 0);
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = s[i] < 0x80 ? 1 : (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3 : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static bool handle_ok(const char *h)
{
    size_t n = strnlen(h, REEL_HANDLE_LEN_MAX + 1);
    if (n < 2 || n > REEL_HANDLE_LEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static void check_plan(const reel_import_plan_t *p, bool movielens)
{
    uint32_t users = 0, posts = 0;
    REEL_ASSERT(strcmp(p->source, movielens ? "movielens" : "collegemsg") == 0);
    REEL_ASSERT(p->nops <= p->ops_cap);
    REEL_ASSERT(p->first_at_ms == (p->nops ? p->ops[0].at_ms : 0));
    for (uint64_t i = 0; i < p->nops; i++) {
        const reel_import_op_t *op = &p->ops[i];
        REEL_ASSERT(op->at_ms >= 1 && op->at_ms <= REEL_ID_MAX);
        REEL_ASSERT(i == 0 || op->at_ms >= p->ops[i - 1].at_ms);
        REEL_ASSERT(op->line >= 1);
        switch (op->kind) {
        case REEL_CMD_USER_CREATE:
            REEL_ASSERT(op->a == ++users);
            break;
        case REEL_CMD_POST_CREATE:
            REEL_ASSERT(movielens);
            REEL_ASSERT(op->b == ++posts);
            REEL_ASSERT(op->a >= 1 && op->a <= users);
            break;
        case REEL_CMD_FOLLOW:
            REEL_ASSERT(!movielens);
            REEL_ASSERT(op->a >= 1 && op->a <= users && op->b >= 1 && op->b <= users);
            REEL_ASSERT(op->a != op->b);
            break;
        case REEL_CMD_VIEW:
        case REEL_CMD_LIKE:
            REEL_ASSERT(movielens);
            REEL_ASSERT(op->a >= 1 && op->a <= users && op->b >= 1 && op->b <= posts);
            break;
        default:
            REEL_ASSERT(!"an op of a kind a plan never holds");
        }
    }
    REEL_ASSERT(users == p->nusers && posts == p->nposts);
    for (uint32_t u = 1; u <= p->nusers; u++)
        REEL_ASSERT(handle_ok(p->handles[u]));
    for (uint32_t k = 1; k <= p->nposts; k++) {
        const reel_import_post_t *post = &p->posts[k];
        REEL_ASSERT(post->prompt_len >= 1 && post->prompt_len <= REEL_PROMPT_LEN_MAX);
        REEL_ASSERT(strlen(post->prompt) == post->prompt_len);
        REEL_ASSERT(utf8_valid((const uint8_t *)post->prompt, post->prompt_len));
        REEL_ASSERT(post->ntags <= REEL_TAGS_MAX);
        for (uint32_t t = 0; t < post->ntags; t++) {
            REEL_ASSERT(post->tags[t].len >= 1 && post->tags[t].len <= REEL_TAG_LEN_MAX);
            REEL_ASSERT(utf8_valid((const uint8_t *)post->tags[t].ptr, post->tags[t].len));
        }
        REEL_ASSERT(memchr(post->uri, '\0', sizeof(post->uri)) != NULL);
    }
}

/* Two plans of the same input are the same commands. */
static void same_plan(const reel_import_plan_t *a, const reel_import_plan_t *b)
{
    REEL_ASSERT(a->nops == b->nops && a->nusers == b->nusers && a->nposts == b->nposts);
    REEL_ASSERT(a->lines == b->lines && a->skipped == b->skipped);
    REEL_ASSERT(a->nops == 0 || memcmp(a->ops, b->ops, a->nops * sizeof(*a->ops)) == 0);
    for (uint32_t u = 1; u <= a->nusers; u++)
        REEL_ASSERT(strcmp(a->handles[u], b->handles[u]) == 0);
    for (uint32_t k = 1; k <= a->nposts; k++)
        REEL_ASSERT(strcmp(a->posts[k].prompt, b->posts[k].prompt) == 0);
}

static void fuzz_plan(bool movielens)
{
    reel_import_plan_t lenient, strict;
    int rl = movielens ? reel_import_read_movielens(dir, false, devnull, &lenient)
                       : reel_import_read_collegemsg(path_cm, false, devnull, &lenient);
    int rs = movielens ? reel_import_read_movielens(dir, true, devnull, &strict)
                       : reel_import_read_collegemsg(path_cm, true, devnull, &strict);
    REEL_ASSERT(rl == 0 || (movielens && rl == REEL_ECORRUPT));
    REEL_ASSERT(rs == 0 || rs == REEL_EUSAGE || (movielens && rs == REEL_ECORRUPT));
    if (rl == 0)
        check_plan(&lenient, movielens);
    if (rs == 0) {
        REEL_ASSERT(strict.bad == 0);
        check_plan(&strict, movielens);
        REEL_ASSERT(rl == 0);
        same_plan(&lenient, &strict);
    } else if (rs == REEL_EUSAGE) {
        REEL_ASSERT(rl != 0 || lenient.bad > 0);
    }
    if (rl == 0 && lenient.bad == 0 && rs != REEL_ECORRUPT)
        REEL_ASSERT(rs == 0);
    if (rl == 0)
        reel_import_plan_free(&lenient);
    if (rs == 0)
        reel_import_plan_free(&strict);
}

static uint64_t touch(const reel_str_t *s)
{
    uint64_t h = 0;
    for (uint32_t i = 0; s->ptr != NULL && i < s->len; i++)
        h += (uint8_t)s->ptr[i];
    return h;
}

static void check_cmds(const reel_import_cmds_t *c)
{
    volatile uint64_t h = 0;
    REEL_ASSERT(c->n + c->bad == c->lines);
    REEL_ASSERT(c->first_at_ms == (c->n ? c->cmds[0].cmd.at : 0));
    for (uint64_t i = 0; i < c->n; i++) {
        const reel_import_cmd_t *ic = &c->cmds[i];
        const reel_event_t *a = &ic->cmd.args;
        REEL_ASSERT(ic->cmd.kind > REEL_CMD_NONE && ic->cmd.kind < REEL_CMD_COUNT);
        REEL_ASSERT(ic->cmd.admin);
        REEL_ASSERT(ic->cmd.at >= 1 && ic->cmd.at <= REEL_ID_MAX);
        REEL_ASSERT(i == 0 || (ic->cmd.at >= c->cmds[i - 1].cmd.at &&
                               ic->line > c->cmds[i - 1].line));
        REEL_ASSERT(ic->root != NULL);
        REEL_ASSERT((a->dim == 0) == (ic->embedding == NULL));
        REEL_ASSERT(a->ntags <= REEL_TAGS_MAX && a->ncameos <= REEL_CAMEOS_MAX);
        if (ic->cmd.idem_key != NULL) {
            REEL_ASSERT(ic->cmd.idem_key_len >= 1 && ic->cmd.idem_key_len <= REEL_IDEM_KEY_LEN_MAX);
            for (uint32_t k = 0; k < ic->cmd.idem_key_len; k++) /* as the engine takes it */
                REEL_ASSERT(ic->cmd.idem_key[k] >= 0x20 && ic->cmd.idem_key[k] <= 0x7e);
        }
        h += touch(&a->handle) + touch(&a->display_name) + touch(&a->code) + touch(&a->prompt);
        h += touch(&a->video_uri) + touch(&a->visibility) + touch(&a->text) + touch(&a->kind);
        h += touch(&a->asset) + touch(&a->policy) + touch(&a->worker) + touch(&a->reason);
        for (uint32_t t = 0; t < a->ntags; t++)
            h += touch(&a->tags[t]);
        for (uint32_t k = 0; k < a->dim * 4u; k++)
            h += ic->embedding[k];
    }
    (void)h;
}

static void fuzz_ndjson(void)
{
    reel_import_cmds_t lenient, strict;
    int rl = reel_import_read_ndjson(path_nd, false, devnull, &lenient);
    int rs = reel_import_read_ndjson(path_nd, true, devnull, &strict);
    REEL_ASSERT(rl == 0);
    REEL_ASSERT(rs == 0 || rs == REEL_EUSAGE);
    check_cmds(&lenient);
    REEL_ASSERT((rs == 0) == (lenient.bad == 0));
    if (rs == 0) {
        check_cmds(&strict);
        REEL_ASSERT(strict.n == lenient.n);
        for (uint64_t i = 0; i < strict.n; i++) {
            REEL_ASSERT(strict.cmds[i].cmd.kind == lenient.cmds[i].cmd.kind);
            REEL_ASSERT(strict.cmds[i].cmd.at == lenient.cmds[i].cmd.at);
            REEL_ASSERT(strict.cmds[i].cmd.idem_fp == lenient.cmds[i].cmd.idem_fp);
        }
        reel_import_cmds_free(&strict);
    }
    reel_import_cmds_free(&lenient);
}

/* The next MovieLens part of in[*off..n): up to "\n%%\n" or the end;
 * NULL when the input is used up. */
static const uint8_t *next_part(const uint8_t *in, size_t n, size_t *off, size_t *len)
{
    static const char sep[] = "\n%%\n";
    if (*off > n)
        return NULL;
    const uint8_t *p = in + *off;
    size_t rest = n - *off;
    const uint8_t *end = memmem(p, rest, sep, sizeof(sep) - 1);
    *len = end ? (size_t)(end - p) : rest;
    *off += *len + (end ? sizeof(sep) - 1 : 1);
    if (end != NULL)
        (*len)++; /* the part keeps its last newline */
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (devnull == NULL)
        setup();
    if (size == 0)
        return 0;
    int mode = data[0] & 3;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (mode == 0) {
        put(path_cm, in, n);
        fuzz_plan(false);
    } else if (mode == 1) {
        put(path_nd, in, n);
        fuzz_ndjson();
    } else {
        const char *paths[3] = {path_genre, path_item, path_data};
        const char *defaults[3] = {default_genre, default_item, default_data};
        static const int order[2][3] = {{0, 1, 2}, {2, 1, 0}};
        size_t off = 0, len = 0;
        for (int k = 0; k < 3; k++) {
            int i = order[mode - 2][k];
            const uint8_t *p = next_part(in, n, &off, &len);
            if (p != NULL && len > 0)
                put(paths[i], p, len);
            else
                put(paths[i], defaults[i], strlen(defaults[i]));
        }
        fuzz_plan(true);
    }
    return 0;
}
