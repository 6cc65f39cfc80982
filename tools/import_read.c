/*
 * import_read.c: the MovieLens 100K and CollegeMsg readers of `reel
 * import` (import_read.h): parse and check every line, sort by time, and
 * turn the records into the plan's commands.
 *
 * A line is either wholly good (it becomes a record) or bad (reported, no
 * record): nothing of a bad line reaches the plan, and the plan is built
 * from records only, so a bad line can never be half-applied.
 */
#include "tools/import_read.h"
#include "engine/common.h"
#include "engine/reel.h"
#include "server/cmdjson.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Largest unix time accepted: at in ms stays a JSON-safe integer. */
#define TIME_S_MAX (REEL_ID_MAX / 1000u)
/* u.item: id, title, release date, video release date, IMDb URL, then
 * one 0/1 flag per genre. */
#define ITEM_FIXED_FIELDS 5u
#define ITEM_FIELDS_MAX (ITEM_FIXED_FIELDS + REEL_IMPORT_GENRES_MAX)

/* ---- lines ---- */

typedef struct reader {
    FILE *f;
    const char *path;
    FILE *err;
    bool strict;
    uint32_t line;                        /* number of the line in buf */
    char buf[REEL_IMPORT_LINE_MAX + 2];   /* the line, NUL-terminated, no newline */
    size_t len;
} reader_t;

static int reader_open(reader_t *r, const char *path, bool strict, FILE *err)
{
    memset(r, 0, sizeof(*r));
    r->path = path;
    r->err = err;
    r->strict = strict;
    r->f = fopen(path, "r");
    if (r->f == NULL) {
        int rc = REEL_ERR(errno);
        fprintf(err, "reel import: %s: %s\n", path, reel_strerror(rc));
        return rc;
    }
    return 0;
}

/* Reports a bad line of r (counted in plan->bad; the first
 * REEL_IMPORT_BAD_SHOWN shown). Returns REEL_EUSAGE under strict (stop),
 * else 0 (skip it). */
__attribute__((format(printf, 3, 4))) static int bad_line(reader_t *r, reel_import_plan_t *plan,
                                                          const char *fmt, ...)
{
    va_list ap;
    if (plan->bad++ < REEL_IMPORT_BAD_SHOWN || r->strict) {
        fprintf(r->err, "reel import: %s:%" PRIu32 ": ", r->path, r->line);
        va_start(ap, fmt);
        vfprintf(r->err, fmt, ap);
        va_end(ap);
        fprintf(r->err, r->strict ? " (--strict: nothing imported)\n" : "; line skipped\n");
    } else if (plan->bad == REEL_IMPORT_BAD_SHOWN + 1) {
        fprintf(r->err, "reel import: more bad lines: only counted from here on\n");
    }
    return r->strict ? REEL_EUSAGE : 0;
}

/* The next line into r->buf: 1 a line, 0 the end, -errno. A line longer
 * than REEL_IMPORT_LINE_MAX is read to its end and given back empty with
 * r->len = SIZE_MAX, for the caller to report. */
static int next_line(reader_t *r)
{
    if (fgets(r->buf, (int)sizeof(r->buf), r->f) == NULL)
        return ferror(r->f) ? REEL_ERR(EIO) : 0;
    r->line++;
    r->len = strlen(r->buf);
    if (r->len > 0 && r->buf[r->len - 1] == '\n') {
        r->buf[--r->len] = '\0';
    } else if (r->len > REEL_IMPORT_LINE_MAX) { /* no newline in room: too long */
        int c;
        while ((c = fgetc(r->f)) != EOF && c != '\n')
            ;
        r->buf[0] = '\0';
        r->len = SIZE_MAX;
        return 1;
    }
    if (r->len > 0 && r->buf[r->len - 1] == '\r')
        r->buf[--r->len] = '\0';
    return 1;
}

/* A decimal number in 1..max, the whole token. */
static bool parse_id(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > max / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return v >= 1 && v <= max;
}

/* Splits s in place at any run of spaces or tabs into at most max tokens;
 * returns how many there are (max + 1 when there are more). */
static size_t split_ws(char *s, char **tok, size_t max)
{
    size_t n = 0;
    for (char *p = s;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return n;
        if (n == max)
            return max + 1;
        tok[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '\0')
            *p++ = '\0';
    }
}

/* Splits s in place at every '|' into at most max fields; as split_ws. */
static size_t split_bar(char *s, char **tok, size_t max)
{
    size_t n = 0;
    for (char *p = s;; p++) {
        if (n == max)
            return max + 1;
        tok[n++] = p;
        p = strchr(p, '|');
        if (p == NULL)
            return n;
        *p = '\0';
    }
}

/* Latin-1 (ISO-8859-1, as MovieLens writes u.item) to UTF-8: bytes below
 * 0x80 stay, the others take two bytes. A new string, or NULL. */
static char *latin1_to_utf8(const char *s, uint32_t *len_out)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1);
    size_t j = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            out[j++] = (char)c;
        } else {
            out[j++] = (char)(0xC0 | (c >> 6));
            out[j++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[j] = '\0';
    *len_out = (uint32_t)j;
    return out;
}

/* ---- the plan ---- */

static int plan_op(reel_import_plan_t *p, uint8_t kind, uint64_t at_ms, uint32_t line,
                   uint32_t a, uint32_t b)
{
    if (p->nops == p->ops_cap) {
        uint64_t cap = p->ops_cap ? 2 * p->ops_cap : 4096;
        reel_import_op_t *ops = realloc(p->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return -ENOMEM;
        p->ops = ops;
        p->ops_cap = cap;
    }
    if (p->nops == 0)
        p->first_at_ms = at_ms;
    REEL_ASSERT(at_ms >= p->first_at_ms); /* records are sorted */
    p->ops[p->nops++] = (reel_import_op_t){at_ms, line, kind, a, b};
    return 0;
}

/* A USER_CREATE with handle prefix+number; *local gets the new local id. */
static int plan_user(reel_import_plan_t *p, const char *prefix, uint64_t number, uint64_t at_ms,
                     uint32_t line, uint32_t *local)
{
    if (p->nusers + 1 >= p->users_cap) { /* 1-based: index nusers + 1 must fit */
        uint32_t cap = p->users_cap ? 2 * p->users_cap : 4096;
        void *h = realloc(p->handles, (size_t)cap * sizeof(*p->handles));
        if (h == NULL)
            return -ENOMEM;
        p->handles = h;
        p->users_cap = cap;
    }
    uint32_t u = ++p->nusers;
    int n = snprintf(p->handles[u], sizeof(p->handles[u]), "%s%" PRIu64, prefix, number);
    REEL_ASSERT(n > 0 && (size_t)n < sizeof(p->handles[u])); /* ids are below 2^24 */
    *local = u;
    return plan_op(p, REEL_CMD_USER_CREATE, at_ms, line, u, 0);
}

void reel_import_plan_free(reel_import_plan_t *plan)
{
    if (plan == NULL)
        return;
    for (uint32_t i = 1; plan->posts != NULL && i <= plan->nposts; i++)
        free(plan->posts[i].prompt);
    for (uint32_t i = 0; i < REEL_IMPORT_GENRES_MAX; i++)
        free(plan->genres[i]);
    free(plan->posts);
    free(plan->handles);
    free(plan->ops);
    memset(plan, 0, sizeof(*plan));
}

/* ---- records: good lines, sorted by time, ties in file order ---- */

typedef struct record {
    uint64_t at_ms;
    uint32_t line;
    uint32_t a;      /* MovieLens user, CollegeMsg sender */
    uint32_t b;      /* MovieLens item, CollegeMsg recipient */
    uint32_t rating; /* MovieLens only */
} record_t;

typedef struct records {
    record_t *r;
    size_t n, cap;
    uint32_t a_max, b_max; /* largest a and b seen */
} records_t;

static int records_add(records_t *rs, record_t rec)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 65536;
        record_t *r = realloc(rs->r, cap * sizeof(*r));
        if (r == NULL)
            return -ENOMEM;
        rs->r = r;
        rs->cap = cap;
    }
    rs->r[rs->n++] = rec;
    rs->a_max = rec.a > rs->a_max ? rec.a : rs->a_max;
    rs->b_max = rec.b > rs->b_max ? rec.b : rs->b_max;
    return 0;
}

/* By time, then line: lines are unique, so this sort is stable. */
static int record_cmp(const void *x, const void *y)
{
    const record_t *a = x, *b = y;
    if (a->at_ms != b->at_ms)
        return a->at_ms < b->at_ms ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* The time token: unix seconds, 1..TIME_S_MAX, into ms. */
static bool parse_time(const char *s, uint64_t *ms)
{
    uint64_t t;
    if (!parse_id(s, TIME_S_MAX, &t))
        return false;
    *ms = t * 1000u;
    return true;
}

/* ---- MovieLens ---- */

typedef struct item {
    char *title;       /* UTF-8, owned until a post takes it */
    uint32_t title_len;
    uint32_t genres;   /* a bit per genre */
    uint32_t post;     /* local post, 0: not created yet */
    bool known;        /* a good u.item line named it */
} item_t;

typedef struct movielens {
    reel_import_plan_t *plan;
    const char *dir;
    bool strict;
    FILE *err;
    uint32_t ngenres;
    item_t *items;     /* [item id], 1-based */
    uint32_t items_cap;
    char path[PATH_MAX];
} movielens_t;

static int ml_open(movielens_t *m, reader_t *r, const char *file)
{
    snprintf(m->path, sizeof(m->path), "%s/%s", m->dir, file);
    return reader_open(r, m->path, m->strict, m->err);
}

/* One u.genre line, "name|index": 0 good or skipped, REEL_EUSAGE, -ENOMEM. */
static int ml_genre_line(movielens_t *m, reader_t *r)
{
    char *f[3];
    uint64_t idx;
    if (r->len == 0)
        return 0; /* u.genre ends with a blank line */
    if (r->len == SIZE_MAX)
        return bad_line(r, m->plan, "line longer than %u bytes", REEL_IMPORT_LINE_MAX);
    if (split_bar(r->buf, f, 2) != 2)
        return bad_line(r, m->plan, "expected name|index");
    /* parse_id takes 1..max; the index starts at 0 */
    if (strcmp(f[1], "0") == 0)
        idx = 0;
    else if (!parse_id(f[1], REEL_IMPORT_GENRES_MAX - 1, &idx))
        return bad_line(r, m->plan, "index '%s' is not in 0..%u", f[1], REEL_IMPORT_GENRES_MAX - 1);
    uint32_t len;
    char *name = latin1_to_utf8(f[0], &len);
    if (name == NULL)
        return -ENOMEM;
    if (len == 0 || len > REEL_TAG_LEN_MAX || m->plan->genres[idx] != NULL) {
        free(name);
        return bad_line(r, m->plan, "genre %" PRIu64 ": name empty, over %u bytes, or given twice",
                        idx, REEL_TAG_LEN_MAX);
    }
    m->plan->genres[idx] = name;
    return 0;
}

static int ml_read_genres(movielens_t *m)
{
    reader_t r;
    int rc = ml_open(m, &r, "u.genre");
    while (rc == 0 && (rc = next_line(&r)) == 1)
        rc = ml_genre_line(m, &r);
    if (r.f != NULL)
        fclose(r.f);
    if (rc != 0)
        return rc;
    while (m->ngenres < REEL_IMPORT_GENRES_MAX && m->plan->genres[m->ngenres] != NULL)
        m->ngenres++;
    for (uint32_t i = m->ngenres; i < REEL_IMPORT_GENRES_MAX; i++) {
        if (m->plan->genres[i] != NULL) {
            fprintf(m->err, "reel import: %s: genre %u is missing (indices must be 0..N-1)\n",
                    m->path, m->ngenres);
            return REEL_ECORRUPT;
        }
    }
    if (m->ngenres == 0) {
        fprintf(m->err, "reel import: %s: no genres\n", m->path);
        return REEL_ECORRUPT;
    }
    return 0;
}

/* Makes room for item id in m->items. */
static int ml_items_reserve(movielens_t *m, uint64_t id)
{
    if (id < m->items_cap)
        return 0;
    uint64_t cap = m->items_cap ? m->items_cap : 2048;
    while (cap <= id)
        cap *= 2;
    item_t *items = realloc(m->items, cap * sizeof(*items));
    if (items == NULL)
        return -ENOMEM;
    memset(items + m->items_cap, 0, (cap - m->items_cap) * sizeof(*items));
    m->items = items;
    m->items_cap = (uint32_t)cap;
    return 0;
}

/* The genre flags of a u.item line into *mask: true when all are 0 or 1
 * and at most REEL_TAGS_MAX are set. */
static bool ml_genre_flags(const movielens_t *m, char **flags, uint32_t *mask)
{
    uint32_t set = 0;
    *mask = 0;
    for (uint32_t g = 0; g < m->ngenres; g++) {
        if (strcmp(flags[g], "1") == 0)
            *mask |= 1u << g, set++;
        else if (strcmp(flags[g], "0") != 0)
            return false;
    }
    return set <= REEL_TAGS_MAX;
}

/* One u.item line: 0 good or skipped, REEL_EUSAGE, -ENOMEM. */
static int ml_item_line(movielens_t *m, reader_t *r)
{
    char *f[ITEM_FIELDS_MAX];
    uint64_t id;
    uint32_t mask, len;
    if (r->len == 0)
        return 0;
    if (r->len == SIZE_MAX)
        return bad_line(r, m->plan, "line longer than %u bytes", REEL_IMPORT_LINE_MAX);
    size_t n = split_bar(r->buf, f, ITEM_FIELDS_MAX);
    if (n != ITEM_FIXED_FIELDS + m->ngenres)
        return bad_line(r, m->plan, "expected %u fields separated by '|' (%u genres), got %zu",
                        ITEM_FIXED_FIELDS + m->ngenres, m->ngenres, n);
    if (!parse_id(f[0], REEL_IMPORT_ID_MAX, &id))
        return bad_line(r, m->plan, "movie id '%s' is not in 1..%u", f[0], REEL_IMPORT_ID_MAX);
    if (!ml_genre_flags(m, f + ITEM_FIXED_FIELDS, &mask))
        return bad_line(r, m->plan, "genre flags must be 0 or 1, at most %u of them 1",
                        REEL_TAGS_MAX);
    int rc = ml_items_reserve(m, id);
    if (rc != 0)
        return rc;
    if (m->items[id].known)
        return bad_line(r, m->plan, "movie %" PRIu64 " is listed twice", id);
    char *title = latin1_to_utf8(f[1], &len);
    if (title == NULL)
        return -ENOMEM;
    if (len == 0 || len > REEL_PROMPT_LEN_MAX) {
        free(title);
        return bad_line(r, m->plan, "title empty or over %u bytes", REEL_PROMPT_LEN_MAX);
    }
    m->items[id] = (item_t){title, len, mask, 0, true};
    return 0;
}

static int ml_read_items(movielens_t *m)
{
    reader_t r;
    int rc = ml_open(m, &r, "u.item");
    while (rc == 0 && (rc = next_line(&r)) == 1)
        rc = ml_item_line(m, &r);
    if (r.f != NULL)
        fclose(r.f);
    return rc;
}

/* One u.data line, "user item rating time" (any white space): a record,
 * or a bad line. */
static int ml_rating_line(movielens_t *m, reader_t *r, records_t *rs)
{
    char *t[4];
    uint64_t user, item, rating, at_ms;
    if (r->len == 0)
        return 0;
    m->plan->lines++;
    if (r->len == SIZE_MAX)
        return bad_line(r, m->plan, "line longer than %u bytes", REEL_IMPORT_LINE_MAX);
    if (split_ws(r->buf, t, 4) != 4)
        return bad_line(r, m->plan, "expected 4 fields: user item rating time");
    if (!parse_id(t[0], REEL_IMPORT_ID_MAX, &user))
        return bad_line(r, m->plan, "user '%s' is not in 1..%u", t[0], REEL_IMPORT_ID_MAX);
    if (!parse_id(t[1], REEL_IMPORT_ID_MAX, &item) || item >= m->items_cap ||
        !m->items[item].known)
        return bad_line(r, m->plan, "movie '%s' is not in u.item", t[1]);
    if (!parse_id(t[2], 5, &rating))
        return bad_line(r, m->plan, "rating '%s' is not in 1..5", t[2]);
    if (!parse_time(t[3], &at_ms))
        return bad_line(r, m->plan, "time '%s' is not unix seconds in 1..%" PRIu64, t[3],
                        (uint64_t)TIME_S_MAX);
    if (rs->n >= REEL_IMPORT_LINES_MAX)
        return bad_line(r, m->plan, "more than %u ratings", REEL_IMPORT_LINES_MAX);
    return records_add(rs, (record_t){at_ms, r->line, (uint32_t)user, (uint32_t)item,
                                      (uint32_t)rating});
}

static int ml_read_ratings(movielens_t *m, records_t *rs)
{
    reader_t r;
    int rc = ml_open(m, &r, "u.data");
    snprintf(m->plan->data_path, sizeof(m->plan->data_path), "%s", m->path);
    while (rc == 0 && (rc = next_line(&r)) == 1)
        rc = ml_rating_line(m, &r, rs);
    if (r.f != NULL)
        fclose(r.f);
    return rc;
}

/* The movie's creator and post, at its first rating. */
static int ml_plan_post(movielens_t *m, const record_t *rec)
{
    reel_import_plan_t *p = m->plan;
    item_t *it = &m->items[rec->b];
    uint32_t creator;
    int rc = plan_user(p, "ml_m", rec->b, rec->at_ms, rec->line, &creator);
    if (rc != 0)
        return rc;
    if (p->nposts + 1 >= p->posts_cap) { /* 1-based, as the handles */
        uint32_t cap = p->posts_cap ? 2 * p->posts_cap : 4096;
        reel_import_post_t *posts = realloc(p->posts, (size_t)cap * sizeof(*posts));
        if (posts == NULL)
            return -ENOMEM;
        p->posts = posts;
        p->posts_cap = cap;
    }
    uint32_t id = ++p->nposts;
    reel_import_post_t *post = &p->posts[id];
    memset(post, 0, sizeof(*post));
    post->prompt = it->title; /* the post owns it now */
    post->prompt_len = it->title_len;
    it->title = NULL;
    for (uint32_t g = 0; g < m->ngenres; g++)
        if (it->genres & (1u << g))
            post->tags[post->ntags++] = (reel_str_t){p->genres[g], (uint32_t)strlen(p->genres[g])};
    snprintf(post->uri, sizeof(post->uri), "movielens-100k:item/%" PRIu32, rec->b);
    it->post = id;
    return plan_op(p, REEL_CMD_POST_CREATE, rec->at_ms, rec->line, creator, id);
}

/* The commands of the sorted ratings. */
static int ml_plan(movielens_t *m, const records_t *rs)
{
    uint32_t *users = calloc((size_t)rs->a_max + 1, sizeof(*users)); /* local id by user */
    int rc = users == NULL ? -ENOMEM : 0;
    for (size_t i = 0; i < rs->n && rc == 0; i++) {
        const record_t *rec = &rs->r[i];
        if (users[rec->a] == 0)
            rc = plan_user(m->plan, "ml_u", rec->a, rec->at_ms, rec->line, &users[rec->a]);
        if (rc == 0 && m->items[rec->b].post == 0)
            rc = ml_plan_post(m, rec);
        uint32_t u = users[rec->a], post = m->items[rec->b].post;
        if (rc == 0)
            rc = plan_op(m->plan, REEL_CMD_VIEW, rec->at_ms, rec->line, u, post);
        if (rc == 0 && rec->rating >= 4)
            rc = plan_op(m->plan, REEL_CMD_LIKE, rec->at_ms, rec->line, u, post);
    }
    free(users);
    return rc;
}

int reel_import_read_movielens(const char *dir, bool strict, FILE *err, reel_import_plan_t *plan)
{
    movielens_t m = {.plan = plan, .dir = dir, .strict = strict, .err = err};
    records_t rs = {0};
    memset(plan, 0, sizeof(*plan));
    plan->source = "movielens";
    int rc = ml_read_genres(&m);
    if (rc == 0)
        rc = ml_read_items(&m);
    if (rc == 0)
        rc = ml_read_ratings(&m, &rs);
    if (rc == 0) {
        if (rs.n > 0) /* no rating at all: rs.r is NULL, which qsort may not take */
            qsort(rs.r, rs.n, sizeof(*rs.r), record_cmp);
        rc = ml_plan(&m, &rs);
    }
    for (uint32_t i = 0; i < m.items_cap; i++)
        free(m.items[i].title); /* movies nobody rated */
    free(m.items);
    free(rs.r);
    if (rc != 0)
        reel_import_plan_free(plan);
    return rc;
}

/* ---- CollegeMsg ---- */

/* One line, "src dst time": a record, a self-message (skipped), or bad. */
static int cm_line(reader_t *r, reel_import_plan_t *plan, records_t *rs)
{
    char *t[3];
    uint64_t src, dst, at_ms;
    if (r->len == 0)
        return 0;
    if (r->len == SIZE_MAX) {
        plan->lines++;
        return bad_line(r, plan, "line longer than %u bytes", REEL_IMPORT_LINE_MAX);
    }
    size_t n = split_ws(r->buf, t, 3);
    if (r->line == 1 && n == 3 && (t[0][0] < '0' || t[0][0] > '9'))
        return 0; /* the header, "src dst time" */
    plan->lines++;
    if (n != 3)
        return bad_line(r, plan, "expected 3 fields: src dst time");
    if (!parse_id(t[0], REEL_IMPORT_ID_MAX, &src) || !parse_id(t[1], REEL_IMPORT_ID_MAX, &dst))
        return bad_line(r, plan, "users must be numbers in 1..%u", REEL_IMPORT_ID_MAX);
    if (!parse_time(t[2], &at_ms))
        return bad_line(r, plan, "time '%s' is not unix seconds in 1..%" PRIu64, t[2],
                        (uint64_t)TIME_S_MAX);
    if (src == dst) {
        plan->skipped++; /* a user cannot follow themselves */
        return 0;
    }
    if (rs->n >= REEL_IMPORT_LINES_MAX)
        return bad_line(r, plan, "more than %u messages", REEL_IMPORT_LINES_MAX);
    return records_add(rs, (record_t){at_ms, r->line, (uint32_t)src, (uint32_t)dst, 0});
}

static int cm_plan(reel_import_plan_t *plan, const records_t *rs)
{
    uint32_t max = rs->a_max > rs->b_max ? rs->a_max : rs->b_max;
    uint32_t *users = calloc((size_t)max + 1, sizeof(*users)); /* local id by user */
    int rc = users == NULL ? -ENOMEM : 0;
    for (size_t i = 0; i < rs->n && rc == 0; i++) {
        const record_t *rec = &rs->r[i];
        if (users[rec->a] == 0)
            rc = plan_user(plan, "cm_u", rec->a, rec->at_ms, rec->line, &users[rec->a]);
        if (rc == 0 && users[rec->b] == 0)
            rc = plan_user(plan, "cm_u", rec->b, rec->at_ms, rec->line, &users[rec->b]);
        if (rc == 0)
            rc = plan_op(plan, REEL_CMD_FOLLOW, rec->at_ms, rec->line, users[rec->a],
                         users[rec->b]);
    }
    free(users);
    return rc;
}

int reel_import_read_collegemsg(const char *path, bool strict, FILE *err,
                                reel_import_plan_t *plan)
{
    reader_t r;
    records_t rs = {0};
    memset(plan, 0, sizeof(*plan));
    plan->source = "collegemsg";
    snprintf(plan->data_path, sizeof(plan->data_path), "%s", path);
    int rc = reader_open(&r, path, strict, err);
    while (rc == 0 && (rc = next_line(&r)) == 1)
        rc = cm_line(&r, plan, &rs);
    if (r.f != NULL)
        fclose(r.f);
    if (rc == 0) {
        if (rs.n > 0) /* no message at all: rs.r is NULL, which qsort may not take */
            qsort(rs.r, rs.n, sizeof(*rs.r), record_cmp);
        rc = cm_plan(plan, &rs);
    }
    free(rs.r);
    if (rc != 0)
        reel_import_plan_free(plan);
    return rc;
}

/* ---- NDJSON of API commands ---- */

static void ndjson_bad(FILE *err, const reel_import_cmds_t *c, uint32_t line, bool strict,
                       const reel_api_err_t *e)
{
    if (c->bad <= REEL_IMPORT_BAD_SHOWN || strict)
        fprintf(err, "reel import: %s:%" PRIu32 ": bad line: %d %s%s%s%s: %s\n", c->path, line,
                e->status, e->code, e->field[0] ? " (field " : "", e->field,
                e->field[0] ? ")" : "", e->message);
    else if (c->bad == REEL_IMPORT_BAD_SHOWN + 1)
        fprintf(err, "reel import: more bad lines: only counted from here\n");
}

/* An idempotency key as the API takes it (Idempotency-Key): a string of
 * 1..64 printable ASCII bytes. */
static bool idem_key_ok(const json_t *key)
{
    if (!json_is_string(key))
        return false;
    const char *k = json_string_value(key);
    size_t n = json_string_length(key);
    if (n < 1 || n > REEL_IDEM_KEY_LEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x20 || k[i] > 0x7e)
            return false;
    return true;
}

/* Parses one line into *ic; 0 or -1 with *e. prev_at: the previous good
 * line's time. */
static int ndjson_line(const char *p, size_t n, uint64_t prev_at, reel_import_cmd_t *ic,
                       reel_api_err_t *e)
{
    json_error_t jerr;
    reel_route_match_t m;
    reel_cmdjson_t parsed;
    json_t *line = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    json_t *op = line ? json_object_get(line, "op") : NULL;
    json_t *key = line ? json_object_get(line, "idempotency_key") : NULL;
    json_t *at = line ? json_object_get(line, "at") : NULL;
    int rc = -1;
    if (line == NULL || !json_is_object(line)) {
        reel_api_err_set(e, 400, "bad_json", "", "a line must be a JSON object (%s)",
                         line ? "not an object" : jerr.text);
    } else if (!json_is_string(op)) {
        reel_api_err_set(e, 400, op ? "bad_field" : "missing_field", "op",
                         "op must be \"METHOD /path\"");
    } else if (!json_is_integer(at) || json_integer_value(at) < 1 ||
               (uint64_t)json_integer_value(at) > REEL_ID_MAX) {
        reel_api_err_set(e, 400, at ? "bad_field" : "missing_field", "at",
                         "at must be the command's time, ms in 1..2^53-1");
    } else if ((uint64_t)json_integer_value(at) < prev_at) {
        reel_api_err_set(e, 400, "bad_field", "at",
                         "at %" JSON_INTEGER_FORMAT " is before the previous line's %" PRIu64
                         ": time never goes back", json_integer_value(at), prev_at);
    } else if (key != NULL && !idem_key_ok(key)) {
        reel_api_err_set(e, 400, "bad_field", "idempotency_key",
                         "idempotency_key must be 1 to 64 printable ASCII bytes");
    } else if (reel_cmdjson_op(json_string_value(op), json_string_length(op), &m, e) == 0 &&
               reel_cmdjson_parse_value(&m, json_object_get(line, "body"), false, &parsed,
                                        e) == 0) {
        ic->cmd = parsed.cmd;
        ic->embedding = parsed.embedding;
        ic->cmd.at = (uint64_t)json_integer_value(at);
        ic->cmd.admin = true;
        if (key != NULL) {
            const char *method = json_string_value(op);
            char *body = json_dumps(json_object_get(line, "body"),
                                    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            ic->cmd.idem_key = json_string_value(key);
            ic->cmd.idem_key_len = (uint32_t)json_string_length(key);
            ic->cmd.idem_fp = reel_cmdjson_fp(method, strlen(method), body ? body : "",
                                              body ? strlen(body) : 0);
            free(body);
        }
        json_decref(parsed.root); /* the body lives in line, which we keep */
        ic->root = json_incref(line);
        rc = 0;
    }
    json_decref(line);
    return rc;
}

int reel_import_read_ndjson(const char *path, bool strict, FILE *err, reel_import_cmds_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->path, sizeof(out->path), "%s", path);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int rc = -errno;
        fprintf(err, "reel import: %s: %s\n", path, strerror(errno));
        return rc;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t prev_at = 0;
    int rc = 0;
    for (uint32_t line = 1; rc == 0 && (n = getline(&buf, &cap, f)) >= 0; line++) {
        reel_api_err_t e = {0};
        size_t len = (size_t)n;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (strspn(buf, " \t") >= len)
            continue; /* blank */
        out->lines++;
        if (out->n == out->cap) {
            uint64_t ncap = out->cap ? out->cap * 2 : 1024;
            void *p = realloc(out->cmds, ncap * sizeof(*out->cmds));
            if (p == NULL) {
                rc = -ENOMEM;
                break;
            }
            out->cmds = p;
            out->cap = ncap;
        }
        reel_import_cmd_t *ic = &out->cmds[out->n];
        memset(ic, 0, sizeof(*ic));
        ic->line = line;
        if (len > REEL_IMPORT_NDJSON_LINE_MAX) {
            reel_api_err_set(&e, 413, "too_large", "", "line longer than %u bytes",
                             REEL_IMPORT_NDJSON_LINE_MAX);
        } else if (ndjson_line(buf, len, prev_at, ic, &e) == 0) {
            prev_at = ic->cmd.at;
            if (out->n++ == 0)
                out->first_at_ms = ic->cmd.at;
            continue;
        }
        out->bad++;
        ndjson_bad(err, out, line, strict, &e);
        if (strict)
            rc = REEL_EUSAGE;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        fprintf(err, "reel import: %s: read error\n", path);
    }
    free(buf);
    fclose(f);
    if (rc != 0)
        reel_import_cmds_free(out);
    return rc;
}

void reel_import_cmds_free(reel_import_cmds_t *c)
{
    for (uint64_t i = 0; c->cmds != NULL && i < c->n; i++) {
        json_decref(c->cmds[i].root);
        free(c->cmds[i].embedding);
    }
    free(c->cmds);
    c->cmds = NULL;
    c->n = c->cap = 0;
}
