/*
 * test_index.c: the recommendation index (index/index.h) on worlds built
 * through the engine, with the index as its on_apply: the dachshund test
 * (a handful of dachshund likes makes a first page mostly, not only,
 * dachshunds), feedback and likes that change the next page, pages that
 * never repeat, the contract's filters, the following feed, trending tags,
 * load from the views and the log, and ANN recall against exact search.
 * Everything is seeded: the same run gives the same pages.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "index/ann.h"
#include "index/index.h"
#include "index/index_int.h"
#include "tests/harness.h"

#define TOPICS 10
#define PER_TOPIC 50
#define CREATORS 40
#define NPOSTS (TOPICS * PER_TOPIC)
#define T0 1780000000000ull /* engine time of the world's first event */

static const char *const topic_tag[TOPICS] = {"dachshund", "cats",   "surfing", "cooking",
                                              "space",     "cars",   "guitar",  "soccer",
                                              "painting",  "robots"};
static const char *const topic_words[TOPICS][6] = {
    {"dachshund", "wiener", "doxie", "sausage", "puppy", "dog"},
    {"kitten", "cat", "purring", "whiskers", "tabby", "meow"},
    {"surfer", "wave", "board", "ocean", "barrel", "swell"},
    {"chef", "pasta", "kitchen", "recipe", "sauce", "garlic"},
    {"rocket", "astronaut", "planet", "orbit", "galaxy", "moon"},
    {"racecar", "engine", "drift", "highway", "turbo", "garage"},
    {"guitar", "riff", "amplifier", "chord", "solo", "strings"},
    {"soccer", "goal", "striker", "stadium", "penalty", "football"},
    {"painter", "canvas", "brush", "watercolor", "portrait", "easel"},
    {"robot", "android", "servo", "circuit", "humanoid", "laser"}};
static const char *const settings[5] = {"park", "city", "night", "snow", "studio"};

static char dir[PATH_MAX];
static reel_engine_t *eng;
static reel_index_t *idx;
static uint64_t clock_ms = T0;
static char prompts[NPOSTS + 64][160];
static uint64_t post_topic[NPOSTS + 64]; /* by post id */
static uint64_t post_author[NPOSTS + 64];
static uint64_t viewer;                  /* the dachshund fan */

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static void open_all(void)
{
    char err[256];
    reel_engine_options_t o = {.trust_client_time = true, .log = {.segment_size = 1 << 20},
                               .on_apply = reel_index_apply, .on_apply_ctx = idx};
    cr_assert_eq(reel_engine_open(dir, &o, &eng, err, sizeof(err)), 0, "open: %s", err);
}

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "index");
    reel_index_options_t io = {.dim = 64, .seed = 42};
    cr_assert_eq(reel_index_open(&io, &idx), 0);
    clock_ms = T0;
    open_all();
}

static void teardown(void)
{
    reel_engine_close(eng);
    reel_index_close(idx);
    reel_test_rmtree(dir);
}

TestSuite(index, .init = setup, .fini = teardown, .timeout = 120);

static reel_cmd_result_t run(reel_cmd_kind_t kind, reel_event_t args)
{
    clock_ms += 1000;
    return reel_test_cmd(eng, kind, clock_ms, args);
}

static uint64_t mkuser(const char *handle)
{
    reel_cmd_result_t r = run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S(handle)});
    reel_test_expect(r, 201, NULL);
    return r.id;
}

/* Post of author on topic (prompt from its words), variant v. */
static uint64_t mkpost(uint64_t author, int topic, int v, const char *vis)
{
    static int k = 0;
    char *pr = prompts[k++ % (NPOSTS + 64)];
    snprintf(pr, 160, "a %s %s and a %s in the %s, take %d", topic_words[topic][v % 6],
             topic_words[topic][(v + 1) % 6], topic_words[topic][(v + 3) % 6],
             settings[v % 5], v);
    reel_event_t a = {.user = author, .video_uri = S("file:///v.mp4"), .prompt = S(pr),
                      .visibility = S(vis), .ntags = 1};
    a.tags[0] = S(topic_tag[topic]);
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE, a);
    reel_test_expect(r, 201, NULL);
    if (r.id < NPOSTS + 64) {
        post_topic[r.id] = (uint64_t)topic;
        post_author[r.id] = author;
    }
    return r.id;
}

/* The world: 40 creators, 10 topics x 50 posts (interleaved in time, one
 * a minute), 20 bystanders who like and watch posts at random (seeded),
 * and the viewer, who likes and watches to the end 6 dachshund clips. */
static void build_world(void)
{
    char h[32];
    for (int i = 0; i < CREATORS; i++) {
        snprintf(h, sizeof h, "creator%d", i);
        mkuser(h);
    }
    viewer = mkuser("viewer");
    for (int i = 0; i < 20; i++) {
        snprintf(h, sizeof h, "bystander%d", i);
        mkuser(h);
    }
    static reel_cmd_t cmds[NPOSTS];
    static reel_str_t tag[NPOSTS];
    for (int i = 0; i < NPOSTS; i++) {
        int topic = i % TOPICS, v = i / TOPICS;
        uint64_t author = 1 + (uint64_t)((v * 7 + topic * 3) % CREATORS);
        char *pr = prompts[i];
        snprintf(pr, 160, "a %s %s and a %s in the %s, take %d", topic_words[topic][v % 6],
                 topic_words[topic][(v + 1) % 6], topic_words[topic][(v + 3) % 6],
                 settings[v % 5], v);
        tag[i] = S(topic_tag[topic]);
        clock_ms += 60000;
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_POST_CREATE, .at = clock_ms,
                               .args = {.user = author, .video_uri = S("file:///v.mp4"),
                                        .prompt = S(pr), .ntags = 1}};
        cmds[i].args.tags[0] = tag[i];
        post_topic[i + 1] = (uint64_t)topic;
        post_author[i + 1] = author;
    }
    reel_test_cmds(eng, cmds, NPOSTS, NULL);
    uint64_t rng = 7;
    static reel_cmd_t eng_cmds[400];
    for (int i = 0; i < 400; i++) {
        uint64_t u = viewer + 1 + reel_test_rand(&rng) % 20;
        uint64_t p = 1 + reel_test_rand(&rng) % NPOSTS;
        clock_ms += 1000;
        eng_cmds[i] = (reel_cmd_t){.kind = i % 2 ? REEL_CMD_LIKE : REEL_CMD_VIEW, .at = clock_ms,
                                   .args = {.user = u, .post = p, .watch_ms = 5000,
                                            .completed = (i % 4) == 0}};
    }
    reel_test_cmds(eng, eng_cmds, 400, NULL);
}

/* The viewer likes and watches to the end n dachshund clips (topic 0):
 * posts 1, 11, 21, ... */
static void fan_of(uint64_t user, int topic, int n, int first)
{
    for (int i = first; i < first + n; i++) {
        uint64_t p = 1 + (uint64_t)(i * TOPICS + topic);
        reel_test_expect(run(REEL_CMD_VIEW, (reel_event_t){.user = user, .post = p,
                                                           .watch_ms = 8000, .completed = true}),
                         200, NULL);
        reel_test_expect(run(REEL_CMD_LIKE, (reel_event_t){.user = user, .post = p}), 200, NULL);
    }
}

static reel_feed_item_t items[REEL_IX_PAGE_MAX];

static reel_feed_page_t page(uint64_t user, size_t limit, const reel_feed_cursor_t *cur)
{
    reel_views_txn_t *t;
    reel_feed_page_t pg = {.items = items};
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_index_feed(idx, t, user, REEL_FEED_FOR_YOU, limit, cur, true, &pg), 0);
    reel_views_read_end(t);
    return pg;
}

static int count_topic(const reel_feed_page_t *pg, int topic)
{
    int n = 0;
    for (size_t i = 0; i < pg->n; i++)
        n += pg->items[i].post < NPOSTS + 64 && post_topic[pg->items[i].post] == (uint64_t)topic;
    return n;
}

/* No author more than twice in any 10 consecutive items of authors[0..n). */
static void check_author_rule(const uint64_t *authors, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = 0;
        for (size_t j = i; j < n && j < i + 10; j++)
            c += authors[j] == authors[i];
        cr_assert_leq(c, 2, "author %llu %d times in the 10 items from %zu",
                      (unsigned long long)authors[i], c, i);
    }
}

static bool liked_or_seen(uint64_t user, uint64_t post)
{
    (void)user;
    /* The fan saw and liked posts 1, 11, ..., and the test's own marks. */
    return post <= NPOSTS && post_topic[post] == 0 && (post - 1) / TOPICS < 6 && user == viewer;
}

Test(index, dachshund)
{
    build_world();
    fan_of(viewer, 0, 6, 0);
    reel_feed_page_t pg = page(viewer, 20, NULL);
    cr_assert_eq(pg.n, 20);
    int dogs = count_topic(&pg, 0);
    fprintf(stderr, "dachshund: %d of 20 on the first page\n", dogs);
    cr_assert_geq(dogs, 12, "mostly dachshunds: %d of 20", dogs);
    cr_assert_lt(dogs, 20, "but not only");
    uint64_t authors[20];
    bool explored = false;
    for (size_t i = 0; i < pg.n; i++) {
        cr_assert_not(liked_or_seen(viewer, pg.items[i].post), "post %llu seen already",
                      (unsigned long long)pg.items[i].post);
        authors[i] = pg.items[i].author;
        cr_assert_eq(authors[i], post_author[pg.items[i].post]);
        cr_assert_geq(pg.items[i].nreasons, 5u, "explain gives the signals");
        for (uint32_t r = 0; r < pg.items[i].nreasons; r++)
            explored |= strcmp(pg.items[i].reasons[r].signal, "exploration") == 0;
    }
    cr_assert(explored, "a share of the page explores");
    check_author_rule(authors, pg.n);
    cr_assert(pg.has_next);
}

Test(index, pages_never_repeat)
{
    build_world();
    fan_of(viewer, 0, 6, 0);
    static uint64_t authors[NPOSTS];
    static bool shown[NPOSTS + 64];
    size_t total = 0;
    reel_feed_cursor_t cur = {0, 0};
    for (int pn = 0; pn < 40; pn++) {
        reel_feed_page_t pg = page(viewer, 20, pn ? &cur : NULL);
        for (size_t i = 0; i < pg.n; i++) {
            cr_assert_not(shown[pg.items[i].post], "post %llu twice (page %d)",
                          (unsigned long long)pg.items[i].post, pn);
            shown[pg.items[i].post] = true;
            authors[total++] = pg.items[i].author;
        }
        if (!pg.has_next)
            break;
        cur = pg.next;
    }
    /* Every eligible post: 500, less the fan's 6 (every author has other
     * posts: the rule holds through the end, but may relax at the tail). */
    cr_assert_eq(total, NPOSTS - 6, "every eligible post is served once: %zu", total);
    check_author_rule(authors, total - 40);
}

Test(index, feedback_takes_effect_on_the_next_page)
{
    build_world();
    fan_of(viewer, 0, 6, 0);
    reel_feed_page_t pg = page(viewer, 20, NULL);
    reel_feed_cursor_t cur = pg.next;
    uint64_t hidden_author = pg.items[0].author, ni = 0;
    /* not_interested on a dachshund clip the next page would show. */
    reel_feed_page_t peek = page(viewer, 20, NULL); /* a fresh session: same ranking */
    for (size_t i = 0; i < peek.n && ni == 0; i++)
        if (peek.items[i].author != hidden_author && post_topic[peek.items[i].post] == 0)
            ni = peek.items[i].post;
    cr_assert_neq(ni, 0);
    reel_test_expect(run(REEL_CMD_FEEDBACK, (reel_event_t){.user = viewer, .post = pg.items[0].post,
                                                           .kind = S("hide_creator")}),
                     200, NULL);
    reel_test_expect(run(REEL_CMD_FEEDBACK, (reel_event_t){.user = viewer, .post = ni,
                                                           .kind = S("not_interested")}),
                     200, NULL);
    for (int k = 0; k < 2; k++) {
        reel_feed_page_t next = page(viewer, 20, k == 0 ? &cur : NULL);
        cr_assert_gt(next.n, 0);
        for (size_t i = 0; i < next.n; i++) {
            cr_assert_neq(next.items[i].author, hidden_author, "hidden creator shown");
            cr_assert_neq(next.items[i].post, ni, "not_interested post shown");
        }
    }
}

Test(index, a_like_changes_the_next_page)
{
    build_world();
    uint64_t u = mkuser("newcomer");
    reel_feed_page_t pg = page(u, 20, NULL);
    int before = count_topic(&pg, 2);
    reel_feed_cursor_t cur = pg.next;
    fan_of(u, 2, 3, 10); /* surfing: posts 103, 113, 123 */
    pg = page(u, 20, &cur); /* the same session's next page */
    int after = count_topic(&pg, 2);
    fprintf(stderr, "surfing: %d of 20 before 3 likes, %d after\n", before, after);
    cr_assert_gt(after, before + 5, "surfing %d -> %d", before, after);
}

Test(index, filters)
{
    build_world();
    fan_of(viewer, 0, 6, 0);
    uint64_t blocked = 1, blocker = 2; /* creators */
    reel_test_expect(run(REEL_CMD_BLOCK, (reel_event_t){.user = viewer, .target = blocked}), 200,
                     NULL);
    reel_test_expect(run(REEL_CMD_BLOCK, (reel_event_t){.user = blocker, .target = viewer}), 200,
                     NULL);
    uint64_t own = mkpost(viewer, 0, 1, "public");
    uint64_t draft = mkpost(3, 0, 2, "draft");
    uint64_t gone = mkpost(4, 0, 3, "public");
    reel_test_expect(run(REEL_CMD_POST_DELETE, (reel_event_t){.post = gone}), 200, NULL);
    /* A post hidden by a cameo takedown. */
    uint64_t cam = 5;
    reel_test_expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = cam, .asset = S("file:///c")}),
                     200, NULL);
    reel_test_expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = cam, .policy = S("everyone")}),
                     200, NULL);
    reel_event_t a = {.user = 6, .video_uri = S("v"), .prompt = S("a dachshund puppy dog"),
                      .ncameos = 1, .ntags = 1};
    a.cameos[0] = cam;
    a.tags[0] = S("dachshund");
    reel_cmd_result_t hp = run(REEL_CMD_POST_CREATE, a);
    reel_test_expect(hp, 201, NULL);
    reel_test_expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = cam, .post = hp.id}), 200,
                     NULL);
    reel_feed_cursor_t cur = {0, 0};
    size_t total = 0;
    for (int pn = 0; pn < 60; pn++) {
        reel_feed_page_t pg = page(viewer, 50, pn ? &cur : NULL);
        for (size_t i = 0; i < pg.n; i++) {
            uint64_t p = pg.items[i].post;
            cr_assert(pg.items[i].author != blocked && pg.items[i].author != blocker,
                      "post %llu of a blocked author", (unsigned long long)p);
            cr_assert(p != own && p != draft && p != gone && p != hp.id, "post %llu shown",
                      (unsigned long long)p);
            cr_assert_not(liked_or_seen(viewer, p));
        }
        total += pg.n;
        if (!pg.has_next)
            break;
        cur = pg.next;
    }
    size_t eligible = 0;
    for (uint64_t p = 1; p <= NPOSTS; p++)
        eligible += post_author[p] != blocked && post_author[p] != blocker &&
                    !liked_or_seen(viewer, p);
    cr_assert_eq(total, eligible, "every eligible post once: %zu of %zu", total, eligible);
}

Test(index, following_newest_first)
{
    build_world();
    reel_test_expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = viewer, .target = 7}), 200, NULL);
    reel_test_expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = viewer, .target = 9}), 200, NULL);
    size_t expect = 0, total = 0;
    for (uint64_t p = 1; p <= NPOSTS; p++)
        expect += post_author[p] == 7 || post_author[p] == 9;
    reel_feed_cursor_t cur = {0, 0};
    uint64_t last = UINT64_MAX;
    for (int pn = 0; pn < 100; pn++) {
        reel_feed_page_t pg = {.items = items};
        cr_assert_eq(reel_index_feed(idx, NULL, viewer, REEL_FEED_FOLLOWING, 7, pn ? &cur : NULL,
                                     false, &pg),
                     0);
        for (size_t i = 0; i < pg.n; i++) {
            cr_assert(pg.items[i].author == 7 || pg.items[i].author == 9);
            cr_assert_lt(pg.items[i].post, last, "newest first");
            last = pg.items[i].post;
        }
        total += pg.n;
        if (!pg.has_next)
            break;
        cur = pg.next;
    }
    cr_assert_eq(total, expect);
}

Test(index, trending_tags)
{
    build_world();
    for (int i = 0; i < 30; i++) /* a burst of cooking posts and likes */
        mkpost(1 + (uint64_t)(i % 40), 3, i, "public");
    reel_trending_tag_t out[5];
    size_t n = 0;
    cr_assert_eq(reel_index_trending(idx, 3600ull * 1000, 5, out, &n), 0);
    cr_assert_gt(n, 0);
    cr_assert_str_eq(out[0].tag, "cooking");
    cr_assert_geq(out[0].posts, 30);
    for (size_t i = 1; i < n; i++)
        cr_assert_geq(out[i - 1].score, out[i].score);
}

Test(index, load_rebuilds_the_state)
{
    build_world();
    fan_of(viewer, 0, 6, 0);
    reel_feed_page_t live = page(viewer, 20, NULL);
    int live_dogs = count_topic(&live, 0);
    reel_engine_close(eng);
    reel_index_close(idx);
    reel_index_options_t io = {.dim = 64, .seed = 42};
    cr_assert_eq(reel_index_open(&io, &idx), 0);
    open_all();
    reel_views_txn_t *t;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_index_load(idx, t, reel_engine_log(eng)), 0);
    reel_views_read_end(t);
    reel_index_stats_t st;
    reel_index_stats(idx, &st);
    cr_assert_eq(st.posts, NPOSTS);
    cr_assert_eq(st.next_offset, reel_log_end(reel_engine_log(eng)));
    reel_feed_page_t pg = page(viewer, 20, NULL);
    int dogs = count_topic(&pg, 0);
    cr_assert_geq(dogs, 12, "loaded: %d dachshunds (live %d)", dogs, live_dogs);
    for (size_t i = 0; i < pg.n; i++)
        cr_assert_not(liked_or_seen(viewer, pg.items[i].post));
    /* Events after the load apply once. */
    fan_of(viewer, 0, 1, 6);
    reel_index_stats(idx, &st);
    cr_assert_eq(st.next_offset, reel_log_end(reel_engine_log(eng)));
}

/* The HNSW graph against exact search on the same (quantised) vectors:
 * 20,000 random unit vectors of dimension 64, 200 queries, recall@10. */
/* The ids ann_recall removes from the graph: every tenth, from 1. */
static bool removed_id(uint32_t id)
{
    return id % 10 == 1;
}

Test(index, ann_recall)
{
    enum { N = 20000, DIM = 64, Q = 200, K = 10 };
    reel_vecs_t v;
    reel_ann_t *a;
    uint64_t rng = 1234;
    cr_assert_eq(reel_vecs_init(&v, DIM), 0);
    cr_assert_eq(reel_vecs_reserve(&v, N, N + 1), 0);
    cr_assert_eq(reel_ann_open(&v, 0, 0, 99, &a), 0);
    float x[DIM];
    for (uint32_t id = 1; id <= N; id++) {
        for (int i = 0; i < DIM; i++)
            x[i] = (float)((double)(reel_test_rand(&rng) >> 11) / 9007199254740992.0 - 0.5);
        reel_vecs_set(&v, id, x);
        cr_assert_eq(reel_ann_insert(a, id), 0);
    }
    for (uint32_t id = 1; id <= N; id += 10) /* deleted nodes route but never answer */
        reel_ann_remove(a, id);
    static reel_ann_hit_t exact[Q][K];
    static float qv[Q][DIM];
    for (int q = 0; q < Q; q++) { /* exact top K of the live nodes */
        for (int i = 0; i < DIM; i++)
            qv[q][i] = (float)((double)(reel_test_rand(&rng) >> 11) / 9007199254740992.0 - 0.5);
        cr_assert_eq(reel_vecs_exact(&v, qv[q], N, removed_id, K, exact[q]), K);
    }
    double recall = 0;
    size_t ef = 32;
    for (; ef <= 512 && recall < 0.95; ef *= 2) {
        size_t hit = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int q = 0; q < Q; q++) {
            reel_ann_hit_t got[K];
            size_t ng = 0;
            cr_assert_eq(reel_ann_search(a, qv[q], K, ef, got, &ng), 0);
            cr_assert_eq(ng, K);
            for (size_t i = 0; i < ng; i++) {
                cr_assert_neq(got[i].id % 10, 1u, "a deleted node answered");
                for (size_t j = 0; j < K; j++)
                    hit += got[i].id == exact[q][j].id;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        recall = (double)hit / (Q * K);
        fprintf(stderr, "ann: recall@10 %.3f at ef %zu, %.0f queries/s, %.1f graph bytes/node\n",
                recall, ef, Q / s, (double)reel_ann_bytes(a) / N);
    }
    cr_assert_geq(recall, 0.95, "recall@10 %.3f at ef up to 512", recall);
    reel_ann_close(a);
    reel_vecs_free(&v);
}

/* Many identical vectors (posts with the same prompt and tags and no
 * client embedding): 20,000 nodes over 1,000 distinct random vectors (20
 * copies each, inserted interleaved), queries near one of them. The exact
 * top 10 is then a tie among copies, so a result counts as a hit when its
 * similarity reaches the exact 10th's. The neighbour heuristic alone keeps
 * at most one copy of a vector per list and collapses here (0.62 at ef
 * 512); with the fill 0.961 at ef 256; with the twins of the base kept
 * (and pruning nothing) 0.970 at ef 128, which this holds to. */
Test(index, ann_recall_duplicates)
{
    enum { N = 20000, DISTINCT = 1000, DIM = 64, Q = 200, K = 10 };
    reel_vecs_t v;
    reel_ann_t *a;
    uint64_t rng = 4321;
    static float base[DISTINCT][DIM];
    cr_assert_eq(reel_vecs_init(&v, DIM), 0);
    cr_assert_eq(reel_vecs_reserve(&v, N, N + 1), 0);
    cr_assert_eq(reel_ann_open(&v, 0, 0, 98, &a), 0);
    for (int d = 0; d < DISTINCT; d++)
        for (int i = 0; i < DIM; i++)
            base[d][i] = (float)((double)(reel_test_rand(&rng) >> 11) / 9007199254740992.0 - 0.5);
    for (uint32_t id = 1; id <= N; id++) {
        reel_vecs_set(&v, id, base[id % DISTINCT]);
        cr_assert_eq(reel_ann_insert(a, id), 0);
    }
    static reel_ann_hit_t exact[Q][K];
    static float qv[Q][DIM];
    for (int q = 0; q < Q; q++) {
        const float *b = base[reel_test_rand(&rng) % DISTINCT];
        for (int i = 0; i < DIM; i++)
            qv[q][i] = b[i] + (float)((double)(reel_test_rand(&rng) >> 11) / 9007199254740992.0 - 0.5) * 0.3f;
        cr_assert_eq(reel_vecs_exact(&v, qv[q], N, NULL, K, exact[q]), K);
    }
    double recall = 0;
    size_t ef = 16;
    for (; ef <= 128 && recall < 0.95; ef *= 2) {
        size_t hit = 0;
        for (int q = 0; q < Q; q++) {
            reel_ann_hit_t got[K];
            size_t ng = 0;
            cr_assert_eq(reel_ann_search(a, qv[q], K, ef, got, &ng), 0);
            cr_assert_eq(ng, K);
            for (size_t i = 0; i < ng; i++)
                hit += got[i].sim >= exact[q][K - 1].sim;
        }
        recall = (double)hit / (Q * K);
        fprintf(stderr, "ann duplicates: recall@10 %.3f at ef %zu\n", recall, ef);
    }
    cr_assert_geq(recall, 0.95, "duplicates: recall@10 %.3f at ef up to 128", recall);
    reel_ann_close(a);
    reel_vecs_free(&v);
}

/* ANN generations (index.c): with generations of 64 nodes, 300 posts leave
 * the newest 64 to 128 in the graphs; the newest post is its own nearest
 * neighbour, the oldest is in neither graph, nothing was dropped, and the
 * feed still ranks. */
Test(index, ann_keeps_the_newest_posts_in_two_generations)
{
    reel_engine_close(eng);
    reel_index_close(idx);
    reel_test_rmtree(dir);
    reel_index_options_t io = {.dim = 64, .seed = 42, .ann_generation_nodes = 64};
    cr_assert_eq(reel_index_open(&io, &idx), 0);
    open_all();
    uint64_t author = mkuser("prolific"), first = 0, last = 0;
    for (int i = 0; i < 300; i++) {
        last = mkpost(author, i % TOPICS, i, "public");
        first = first ? first : last;
    }
    reel_index_stats_t st;
    reel_index_stats(idx, &st);
    cr_assert_geq(st.ann_nodes, 64);
    cr_assert_leq(st.ann_nodes, 128, "two generations at most: %lu", (unsigned long)st.ann_nodes);
    cr_assert_eq(st.dropped, 0);
    cr_assert_not_null(idx->ann_old, "the first generation filled and was dropped");
    cr_assert(!reel_ann_contains(idx->ann, (uint32_t)first) &&
              !reel_ann_contains(idx->ann_old, (uint32_t)first), "the oldest post left the graphs");
    float x[64];
    reel_vecs_get(&idx->vecs, (uint32_t)last, x);
    reel_ann_hit_t hits[10];
    size_t n = 0;
    cr_assert_eq(reel__ix_ann_search(idx, x, 10, 64, hits, &n), 0);
    cr_assert_eq(n, 10);
    cr_assert_eq(hits[0].id, (uint32_t)last, "the newest post is found first");
    for (size_t i = 1; i < n; i++)
        cr_assert_geq(hits[i - 1].sim, hits[i].sim, "best first across both graphs");
    fan_of(mkuser("fan"), 0, 3, 0);
    reel_feed_page_t pg = page(mkuser("reader"), 20, NULL);
    cr_assert_gt(pg.n, 0, "the feed still ranks");
}
