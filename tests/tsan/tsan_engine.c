/*
 * tsan_engine.c: the threaded core under ThreadSanitizer (`make tsan`).
 *
 * Criterion cannot start under TSan (its inheritable arena fails:
 * Snaipe/Criterion#274), so this is a plain program. It runs the parts that
 * share memory across threads, all at once, on a scratch data directory:
 *   - 4 submitter threads: random writes (users, follows, posts, likes,
 *     views, feedback, unfollows) through reel_engine_submit and run;
 *   - the engine's command writer and the log's writer and background
 *     threads (group commit, compression of sealed segments);
 *   - the feed index, applied on the writer thread (on_apply) while
 *     2 reader threads rank feeds and trending tags and read the views;
 *   - a tailer thread following the log with reel_log_wait and an
 *     iterator, as /v1/log/stream does.
 * It exits 0 when every thread finished and every check held; TSan makes
 * any data race fatal (TSAN_OPTIONS=halt_on_error=1 in the Makefile).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "index/index.h"

#define WRITERS 4
#define READERS 2
#define OPS_PER_WRITER 400
#define USERS 100

static reel_engine_t *eng;
static reel_index_t *idx;
static atomic_bool done;
static atomic_int failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "tsan_engine: %s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            atomic_fetch_add(&failures, 1);                               \
        }                                                                 \
    } while (0)

/* The harness links Criterion, which TSan cannot start: its own few. */
static uint64_t test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static void run_cmd(reel_cmd_kind_t kind, reel_event_t args)
{
    reel_cmd_t c = {.kind = kind, .args = args};
    reel_cmd_result_t r;
    int rc = reel_engine_run(eng, &c, &r);
    CHECK(rc == 0, "submit: %s", reel_strerror(rc));
    /* Refusals (404 of a deleted post, 403 blocked...) are fine here: the
     * point is the threads; a 503 means the engine failed. */
    CHECK(r.status != 503, "503: %s", r.message);
}

static void *writer(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 7919 + 1;
    static const char *const prompts[] = {"dachshund surfing at dawn", "jazz trio at night",
                                          "rocket launch into orbit", "pasta in a small kitchen"};
    static const char *const tags[] = {"dogs", "jazz", "space", "cooking"};
    for (int i = 0; i < OPS_PER_WRITER; i++) {
        uint64_t r = test_rand(&rng);
        uint64_t u = 1 + r % USERS, v = 1 + (r >> 16) % USERS, p = 1 + (r >> 32) % 400;
        int t = (int)((r >> 48) % 4);
        switch ((r >> 8) % 8) {
        case 0:
            run_cmd(REEL_CMD_POST_CREATE,
                    (reel_event_t){.user = u, .video_uri = S("s3://v"), .prompt = S(prompts[t]),
                                   .ntags = 1, .tags = {S(tags[t])}, .visibility = S("public")});
            break;
        case 1: run_cmd(REEL_CMD_FOLLOW, (reel_event_t){.user = u, .target = v}); break;
        case 2: run_cmd(REEL_CMD_UNFOLLOW, (reel_event_t){.user = u, .target = v}); break;
        case 3:
        case 4: run_cmd(REEL_CMD_LIKE, (reel_event_t){.user = u, .post = p}); break;
        case 5:
            run_cmd(REEL_CMD_VIEW, (reel_event_t){.user = u, .post = p, .watch_ms = 3000,
                                                  .completed = true});
            break;
        case 6:
            run_cmd(REEL_CMD_FEEDBACK, (reel_event_t){.user = u, .post = p, .kind = S("see_less")});
            break;
        default: run_cmd(REEL_CMD_UNLIKE, (reel_event_t){.user = u, .post = p}); break;
        }
    }
    return NULL;
}

static void *reader(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 104729 + 3;
    reel_feed_item_t items[20];
    reel_trending_tag_t trend[8];
    uint64_t pages = 0;
    while (!atomic_load(&done)) {
        reel_views_txn_t *t;
        int rc = reel_engine_read_begin(eng, &t);
        CHECK(rc == 0, "read_begin: %s", reel_strerror(rc));
        if (rc != 0)
            break;
        uint64_t u = 1 + test_rand(&rng) % USERS;
        reel_user_view_t uv;
        rc = reel_views_get_user(t, u, &uv);
        CHECK(rc == 0, "user %llu: %s", (unsigned long long)u, reel_strerror(rc));
        reel_feed_page_t page = {.items = items};
        rc = reel_index_feed(idx, t, u, REEL_FEED_FOR_YOU, 20, NULL, true, &page);
        CHECK(rc == 0, "feed: %s", reel_strerror(rc));
        reel_views_read_end(t);
        size_t n;
        rc = reel_index_trending(idx, 86400000, 8, trend, &n);
        CHECK(rc == 0, "trending: %s", reel_strerror(rc));
        pages++;
    }
    CHECK(pages > 0, "a reader ranked no page");
    return NULL;
}

/* Follows the log to its end as /v1/log/stream does, checking offsets are
 * dense. */
static void *tailer(void *arg)
{
    (void)arg;
    reel_log_t *log = reel_engine_log(eng);
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    uint64_t next = 0;
    int rc = reel_log_iter_open(log, 0, &it);
    CHECK(rc == 0, "iter: %s", reel_strerror(rc));
    while (rc == 0) {
        rc = reel_log_iter_next(it, &rec);
        if (rc == 0) {
            CHECK(rec.offset == next, "offset %llu, want %llu", (unsigned long long)rec.offset,
                  (unsigned long long)next);
            next = rec.offset + 1;
            continue;
        }
        if (rc != REEL_EEND)
            break;
        if (atomic_load(&done) && next >= reel_log_end(log))
            break;
        rc = reel_log_wait(log, next, 100);
        rc = rc == REEL_EEND ? 0 : rc;
    }
    CHECK(rc == 0 || rc == REEL_EEND, "tail: %s", reel_strerror(rc));
    reel_log_iter_close(it);
    return NULL;
}

int main(void)
{
    char dir[PATH_MAX], err[256];
    pthread_t w[WRITERS], r[READERS], tl;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/reeltest-tsan-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    reel_index_options_t io = {0};
    if (reel_index_open(&io, &idx) != 0)
        return 1;
    reel_engine_options_t o = {.log = {.segment_size = 1 << 20}, .on_apply = reel_index_apply,
                               .on_apply_ctx = idx};
    if (reel_engine_open(dir, &o, &eng, err, sizeof err) != 0) {
        fprintf(stderr, "tsan_engine: open: %s\n", err);
        return 1;
    }
    for (int i = 0; i < USERS; i++) {
        char h[16];
        snprintf(h, sizeof h, "user%d", i);
        run_cmd(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S(h)});
    }
    for (uintptr_t i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, (void *)i);
    pthread_create(&tl, NULL, tailer, NULL);
    for (uintptr_t i = 0; i < WRITERS; i++)
        pthread_create(&w[i], NULL, writer, (void *)(i + 1));
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    pthread_join(tl, NULL);
    uint64_t end = reel_log_end(reel_engine_log(eng));
    int rc = reel_engine_close(eng);
    reel_index_close(idx);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(rc == 0, "close: %s", reel_strerror(rc));
    fprintf(stderr, "tsan_engine: %d writers x %d commands, %d readers, 1 tailer: %llu events, %d "
                    "failures\n", WRITERS, OPS_PER_WRITER, READERS, (unsigned long long)end,
            atomic_load(&failures));
    return atomic_load(&failures) == 0 ? 0 : 1;
}
