/*
 * feed.c: the feed fallback (feed.h).
 */
#include "server/feed.h"
#include "engine/common.h"

#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "server/limits.h"

#define JUDGED 1

typedef struct feed_args {
    uint64_t user;
    uint64_t limit;
    uint64_t ca, cb;  /* cursor */
    bool following;   /* kind=following */
    bool explain;
} feed_args_t;

static int feed_parse(reel_views_txn_t *t, const reel_route_match_t *m, feed_args_t *a,
                      reel_api_err_t *err)
{
    char buf[16];
    reel_user_view_t u;
    a->user = m->id;
    int q = reel_query_get(m->query, m->query_len, "kind", buf, sizeof(buf));
    a->following = q > 0 && strcmp(buf, "following") == 0;
    if (q != 0 && !a->following && (q < 0 || strcmp(buf, "for_you") != 0)) {
        reel_api_err_set(err, 400, "bad_field", "kind", "kind is for_you or following");
        return JUDGED;
    }
    a->explain = reel_query_get(m->query, m->query_len, "explain", buf, sizeof(buf)) > 0 &&
                 (strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0);
    if (reel_query_limit(m->query, m->query_len, SRV_PAGE_DEFAULT, SRV_PAGE_MAX, &a->limit, err) ||
        reel_cursor_get(m->query, m->query_len, &a->ca, &a->cb, err))
        return JUDGED;
    int rc = reel_views_get_user(t, a->user, &u);
    if (rc == REEL_ENOTFOUND) {
        reel_api_err_set(err, 404, "not_found", "", "no user %llu", (unsigned long long)a->user);
        return JUDGED;
    }
    return rc;
}

static void item_json(reel_jbuf_t *b, bool first, uint64_t post, uint64_t author, bool followed,
                      bool explain)
{
    reel_jbuf_addf(b, "%s{\"post_id\":%llu,\"author\":%llu,\"score\":%s", first ? "" : ",",
                   (unsigned long long)post, (unsigned long long)author,
                   followed ? "1.0" : "0.5");
    if (explain)
        reel_jbuf_addf(b, ",\"reasons\":[{\"signal\":\"%s\",\"value\":1.0}]",
                       followed ? "following" : "recent");
    reel_jbuf_adds(b, "}");
}

static int cmp_entry(const void *x, const void *y)
{
    const reel_post_entry_t *a = x, *b = y;
    if (a->created_at != b->created_at)
        return a->created_at > b->created_at ? -1 : 1;
    return a->post < b->post ? -1 : a->post > b->post;
}

/* kind=following: every followee's next page, merged. */
static int feed_following(reel_views_txn_t *t, const feed_args_t *a, reel_jbuf_t *b)
{
    reel_follow_entry_t fs[SRV_FEED_FOLLOWEES_MAX];
    size_t nf = 0, n = 0;
    int rc = reel_views_following(t, a->user, 0, 0, SRV_FEED_FOLLOWEES_MAX, fs, &nf);
    if (rc != 0)
        return rc;
    size_t per = (size_t)a->limit + 1;
    reel_post_entry_t *all = malloc(sizeof(*all) * (nf * per + 1));
    if (all == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < nf && rc == 0; i++) {
        size_t got = 0;
        rc = reel_views_posts_by_author(t, fs[i].user, a->ca, a->cb, 0, per, all + n, &got);
        n += got;
    }
    if (rc == 0) {
        qsort(all, n, sizeof(*all), cmp_entry);
        reel_jbuf_adds(b, "{\"items\":[");
        for (size_t i = 0; i < n && i < a->limit; i++) {
            reel_post_view_t p;
            uint64_t author = reel_views_get_post(t, all[i].post, &p) == 0 ? p.author : 0;
            item_json(b, i == 0, all[i].post, author, true, a->explain);
        }
        bool more = n > a->limit;
        reel_jbuf_adds(b, "],\"next_cursor\":");
        if (more)
            reel_cursor_encode(b, all[a->limit - 1].created_at, all[a->limit - 1].post);
        else
            reel_jbuf_adds(b, "null");
        reel_jbuf_adds(b, "}");
    }
    free(all);
    return rc;
}

/* Whether the for_you fallback may show post p to user: 1 yes, 0 no. */
static int eligible(reel_views_txn_t *t, uint64_t user, const reel_post_view_t *p)
{
    bool blocked = false, liked = false;
    uint8_t fb = 0;
    if (!p->public || p->hidden || p->author == user)
        return 0;
    int rc = reel_views_is_blocked(t, user, p->author, &blocked);
    if (rc == 0)
        rc = reel_views_liked(t, p->id, user, &liked);
    if (rc == 0)
        rc = reel_views_get_feedback(t, user, p->id, &fb);
    if (rc != 0)
        return rc;
    return !blocked && !liked &&
           (fb & (REEL_FEEDBACK_NOT_INTERESTED | REEL_FEEDBACK_HIDE_CREATOR)) == 0;
}

static int feed_for_you(reel_views_txn_t *t, const feed_args_t *a, reel_jbuf_t *b)
{
    uint64_t last = 0, id, shown = 0, next = 0;
    int rc = reel_views_last_id(t, REEL_VIEWS_ID_POST, &last);
    if (rc != 0)
        return rc;
    /* The cursor is the id the scan stopped before: ids below it are next. */
    id = a->cb == 0 ? last : (a->cb - 1 < last ? a->cb - 1 : last);
    reel_jbuf_adds(b, "{\"items\":[");
    for (uint64_t scanned = 0; id > 0 && scanned < SRV_FEED_SCAN_MAX; id--, scanned++) {
        reel_post_view_t p;
        rc = reel_views_get_post(t, id, &p);
        if (rc == REEL_ENOTFOUND)
            continue;
        if (rc == 0)
            rc = eligible(t, a->user, &p);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        if (shown == a->limit) {
            next = id + 1; /* an eligible one remains: the cursor stops after the last shown */
            break;
        }
        bool followed = false;
        if ((rc = reel_views_follows(t, a->user, p.author, &followed)) != 0)
            return rc;
        item_json(b, shown == 0, p.id, p.author, followed, a->explain);
        shown++;
    }
    if (next == 0 && id > 0)
        next = id + 1; /* scan bound reached: go on from here */
    reel_jbuf_adds(b, "],\"next_cursor\":");
    if (next != 0)
        reel_cursor_encode(b, 0, next);
    else
        reel_jbuf_adds(b, "null");
    reel_jbuf_adds(b, "}");
    return 0;
}

/* kind=for_you from the index: its page, reasons and cursor as JSON. */
static int feed_ranked(reel_views_txn_t *t, reel_index_t *idx, const feed_args_t *a,
                       reel_jbuf_t *b)
{
    static _Thread_local reel_feed_item_t items[REEL_IX_PAGE_MAX];
    reel_feed_cursor_t cur = {a->ca, a->cb};
    reel_feed_page_t page = {.items = items};
    size_t limit = a->limit < REEL_IX_PAGE_MAX ? (size_t)a->limit : REEL_IX_PAGE_MAX;
    int rc = reel_index_feed(idx, t, a->user, REEL_FEED_FOR_YOU, limit, &cur, a->explain, &page);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < page.n; i++) {
        const reel_feed_item_t *it = &items[i];
        reel_jbuf_addf(b, "%s{\"post_id\":%llu,\"author\":%llu,\"score\":%.6g", i ? "," : "",
                       (unsigned long long)it->post, (unsigned long long)it->author,
                       (double)it->score);
        if (a->explain) {
            reel_jbuf_adds(b, ",\"reasons\":[");
            for (uint32_t j = 0; j < it->nreasons; j++)
                reel_jbuf_addf(b, "%s{\"signal\":\"%s\",\"value\":%.6g}", j ? "," : "",
                               it->reasons[j].signal, (double)it->reasons[j].value);
            reel_jbuf_adds(b, "]");
        }
        reel_jbuf_adds(b, "}");
    }
    reel_jbuf_adds(b, "],\"next_cursor\":");
    if (page.has_next)
        reel_cursor_encode(b, page.next.a, page.next.b);
    else
        reel_jbuf_adds(b, "null");
    reel_jbuf_adds(b, "}");
    return 0;
}

int reel_feed_serve(reel_views_txn_t *t, reel_index_t *idx, const reel_route_match_t *m,
                    reel_jbuf_t *b, reel_api_err_t *err)
{
    feed_args_t a;
    memset(&a, 0, sizeof(a));
    int rc = feed_parse(t, m, &a, err);
    if (rc != 0)
        return rc;
    if (a.following)
        return feed_following(t, &a, b);
    return idx ? feed_ranked(t, idx, &a, b) : feed_for_you(t, &a, b);
}
