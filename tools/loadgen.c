/*
 * loadgen.c: `reel loadgen`: the synthetic world of tools/loadgen.h and
 * its fast path, straight into a data directory.
 *
 * Fast path. Events are valid by construction (ids are handed out in
 * order, likes and follows are never repeated, generations walk their
 * states in order, quotas hold), so they skip the engine's rules and go
 * to the log directly: encoded into per-chunk arenas, cut into append
 * groups of --group events, and submitted with reel_log_submit, many
 * chunks in flight, so the log's writer always finds the next batch
 * queued. The views are then folded from the log with reel_replay (as
 * `reel rebuild` does), unless --no-views leaves them to the next open
 * (reel_engine_open and reeld fold what the views lack).
 */
#include "tools/loadgen.h"
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/log.h"
#include "engine/replay.h"
#include "engine/views.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the world ---- */

static const char *const topic_names[LG_TOPICS] = {
    "cats", "dogs", "space", "cooking", "dance", "anime", "football", "travel",
    "cars", "fashion", "music", "gaming", "ocean", "history", "robots", "comedy",
    "fitness", "art", "horror", "nature", "science", "magic", "cities", "dinosaurs",
};
/* Words of each topic, LG_WORDS each: prompts are made of them. */
#define LG_WORDS 6u
static const char *const topic_words[LG_TOPICS][LG_WORDS] = {
    {"kitten", "whiskers", "purring", "tabby", "yarn", "nap"},
    {"puppy", "fetch", "corgi", "bark", "leash", "park"},
    {"rocket", "nebula", "astronaut", "orbit", "mars", "galaxy"},
    {"pasta", "chef", "spicy", "kitchen", "dessert", "grill"},
    {"ballet", "hiphop", "spin", "stage", "rhythm", "tango"},
    {"samurai", "mecha", "sakura", "ninja", "spirit", "academy"},
    {"goal", "stadium", "dribble", "striker", "penalty", "derby"},
    {"beach", "mountain", "passport", "island", "train", "desert"},
    {"racing", "drift", "engine", "highway", "classic", "garage"},
    {"runway", "vintage", "sneakers", "couture", "denim", "style"},
    {"guitar", "synth", "concert", "drums", "vinyl", "choir"},
    {"boss", "pixel", "quest", "speedrun", "arcade", "loot"},
    {"whale", "coral", "wave", "surfing", "reef", "octopus"},
    {"castle", "pharaoh", "viking", "empire", "knight", "ruins"},
    {"android", "circuit", "laser", "factory", "drone", "cyborg"},
    {"prank", "sitcom", "standup", "blooper", "parody", "laugh"},
    {"yoga", "sprint", "lifting", "marathon", "stretch", "boxing"},
    {"painting", "sculpture", "mural", "sketch", "canvas", "ink"},
    {"ghost", "haunted", "zombie", "shadow", "crypt", "fog"},
    {"forest", "waterfall", "eagle", "aurora", "volcano", "meadow"},
    {"atom", "telescope", "chemistry", "fossil", "lab", "quantum"},
    {"wizard", "potion", "dragon", "spell", "portal", "wand"},
    {"skyline", "subway", "neon", "rooftop", "market", "bridge"},
    {"raptor", "fossil", "jurassic", "volcano", "egg", "roar"},
};

static const char *const feedback_kinds[4] = {"see_more", "see_less", "not_interested",
                                              "hide_creator"};

/* A set of u64 keys (open addressing, linear probing; 0 is "empty", so
 * keys are stored plus one). */
typedef struct lg_set {
    uint64_t *slots;
    uint64_t mask;
    uint64_t n;
} lg_set_t;

/* Steps of a generation, one event each. */
enum { GEN_NONE = 0, GEN_CLAIMED, GEN_COMPLETED, GEN_POST };

struct lg_world {
    lg_opts_t o;
    uint64_t rng;
    uint64_t made;          /* events made */
    uint64_t span_ms;       /* the synthetic clock's span */
    double *follow_cdf;     /* Zipf(1.0) over users: who is followed */
    double *author_cdf;     /* Zipf(0.9) over users: who posts */
    double topic_cdf[LG_TOPICS];
    uint8_t *fav_topic;     /* [user index] */
    uint32_t *gen_day;      /* [user index]: calendar day of gen_count */
    uint8_t *gen_count;     /* [user index]: generations that day */
    uint8_t *post_topic;    /* [post id] */
    uint32_t *post_root;    /* [post id]: remix root, 0 none */
    uint32_t *topic_posts[LG_TOPICS]; /* post ids of each topic, in order */
    uint32_t topic_n[LG_TOPICS];
    uint32_t topic_cap[LG_TOPICS];
    lg_set_t likes;         /* user << 32 | post */
    lg_set_t follows;       /* follower << 32 | target */
    uint64_t users_made;
    uint64_t posts_made;
    uint64_t comments_made;
    uint64_t gens_made;
    uint64_t first_follows; /* follows of the setup phase */
    uint64_t first_made;    /* of them, made */
    uint64_t activity_start; /* `made` when the activity began */
    uint32_t mix_total;
    /* the generation in progress */
    int gen_step;
    uint32_t burst_left;    /* generations left in the user's burst */
    uint64_t gen_user, gen_id, gen_remix, gen_root, gen_post;
    uint32_t gen_topic, gen_w1, gen_w2, gen_w3;
    /* strings of the event last returned */
    char handle[32];
    char name[48];
    char prompt[160];
    char uri[64];
    char text[96];
};

static uint64_t rnd(lg_world_t *w)
{
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rnd01(lg_world_t *w)
{
    return (double)(rnd(w) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t rnd_below(lg_world_t *w, uint64_t n)
{
    return n == 0 ? 0 : rnd(w) % n;
}

static double *zipf_cdf(uint64_t n, double s)
{
    double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
    if (cdf == NULL)
        return NULL;
    for (uint64_t k = 0; k < n; k++)
        cdf[k] = (sum += 1.0 / pow((double)(k + 1), s));
    for (uint64_t k = 0; k < n; k++)
        cdf[k] /= sum;
    return cdf;
}

/* An index drawn from a CDF of n entries. */
static uint64_t zipf_draw(lg_world_t *w, const double *cdf, uint64_t n)
{
    double u = rnd01(w);
    uint64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int set_init(lg_set_t *s, uint64_t expected)
{
    uint64_t cap = 1024;
    while (cap < expected * 2)
        cap <<= 1;
    s->slots = calloc(cap, sizeof(*s->slots));
    s->mask = cap - 1;
    s->n = 0;
    return s->slots ? 0 : -ENOMEM;
}

/* The slot of key: splitmix64's finalizer, so every bit of the key moves
 * the low bits. (A plain multiply left the low bits to the key's low
 * bits, the target or the post: all the follows of a creator with tens of
 * thousands of followers probed one chain, 66% of loadgen's time.) Only
 * membership is asked, so the slot never changes the world. */
static uint64_t set_slot(uint64_t k)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    return k ^ (k >> 31);
}

/* Adds key; false when it was there already or the set is full. */
static bool set_add(lg_set_t *s, uint64_t key)
{
    if (s->n * 4 >= (s->mask + 1) * 3)
        return false; /* full enough: no more (the caller draws another action) */
    uint64_t k = key + 1, h = set_slot(k) & s->mask;
    while (s->slots[h] != 0) {
        if (s->slots[h] == k)
            return false;
        h = (h + 1) & s->mask;
    }
    s->slots[h] = k;
    s->n++;
    return true;
}

void lg_opts_default(lg_opts_t *o)
{
    *o = (lg_opts_t){.seed = 1, .users = 100000, .posts = 20000, .events = 1000000,
                     .follows = 20, .start_ms = LG_START_MS_DEFAULT, .days = 7, .group = 256,
                     .mix = {60, 25, 6, 4, 5}, .gen_pct = 70, .remix_pct = 10};
}

int lg_parse_mix(const char *s, lg_opts_t *o)
{
    static const char *const names[LG_ACTIONS] = {"view", "like", "comment", "feedback",
                                                  "follow"};
    uint32_t mix[LG_ACTIONS] = {0};
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        uint64_t v;
        size_t i;
        if (eq != NULL)
            *eq = '\0';
        for (i = 0; i < LG_ACTIONS && strcmp(t, names[i]) != 0; i++)
            ;
        if (eq == NULL || i == LG_ACTIONS || tool_parse_u64(eq + 1, &v) != 0 || v > 1000000) {
            fprintf(stderr, "reel loadgen: --mix: '%s': expected NAME=WEIGHT with NAME one of "
                            "view, like, comment, feedback, follow\n", t);
            return REEL_EUSAGE;
        }
        mix[i] = (uint32_t)v;
    }
    memcpy(o->mix, mix, sizeof(mix));
    return 0;
}

int lg_opts_check(const lg_opts_t *o)
{
    if (o->users < 2 || o->users > (1u << 26) || o->posts > (1u << 30) ||
        o->events < o->users || o->days == 0 || o->group == 0 || o->group > 4000 ||
        o->gen_pct > 100 || o->remix_pct > 100 ||
        o->mix[0] + o->mix[1] + o->mix[2] + o->mix[3] + o->mix[4] == 0) {
        fprintf(stderr, "reel loadgen: out of range: --users 2..2^26, --posts up to 2^30, "
                        "--events at least --users, --days >= 1, --group 1..4000, shares "
                        "0..100, a --mix with some weight\n");
        return REEL_EUSAGE;
    }
    return 0;
}

int lg_world_new(const lg_opts_t *o, lg_world_t **out)
{
    *out = NULL;
    int rc = lg_opts_check(o);
    if (rc != 0)
        return rc;
    lg_world_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->o = *o;
    w->rng = o->seed * 0x2545F4914F6CDD1Dull + 0x1234567ull;
    w->span_ms = o->days * 86400000ull;
    for (int i = 0; i < LG_ACTIONS; i++)
        w->mix_total += o->mix[i];
    uint64_t budget = (o->events - o->users) / 2; /* at most half of the rest: first follows */
    w->first_follows = o->users * o->follows < budget ? o->users * o->follows : budget;
    if (w->first_follows > o->users * (o->users - 1) / 4)
        w->first_follows = o->users * (o->users - 1) / 4; /* room to find new pairs */
    w->activity_start = o->users + w->first_follows; /* one event per call */
    double ts = 0;
    for (uint32_t t = 0; t < LG_TOPICS; t++)
        w->topic_cdf[t] = (ts += 1.0 / pow(t + 1.0, 1.1));
    for (uint32_t t = 0; t < LG_TOPICS; t++)
        w->topic_cdf[t] /= ts;
    uint64_t likes_max = (uint64_t)((double)o->events * (o->mix[LG_LIKE] + 1.0) /
                                    (w->mix_total + 1.0)) + 1024;
    uint64_t follows_max = w->first_follows +
                           (uint64_t)((double)o->events * (o->mix[LG_FOLLOW] + 1.0) /
                                      (w->mix_total + 1.0)) + 1024;
    w->follow_cdf = zipf_cdf(o->users, 1.0);
    w->author_cdf = zipf_cdf(o->users, 0.9);
    w->fav_topic = malloc(o->users);
    w->gen_day = calloc(o->users, sizeof(*w->gen_day));
    w->gen_count = calloc(o->users, 1);
    w->post_topic = malloc(o->posts + 1);
    w->post_root = calloc(o->posts + 1, sizeof(*w->post_root));
    rc = set_init(&w->likes, likes_max);
    if (rc == 0)
        rc = set_init(&w->follows, follows_max);
    if (rc != 0 || !w->follow_cdf || !w->author_cdf || !w->fav_topic || !w->gen_day ||
        !w->gen_count || !w->post_topic || !w->post_root) {
        lg_world_free(w);
        return -ENOMEM;
    }
    *out = w;
    return 0;
}

void lg_world_free(lg_world_t *w)
{
    if (w == NULL)
        return;
    free(w->follow_cdf);
    free(w->author_cdf);
    free(w->fav_topic);
    free(w->gen_day);
    free(w->gen_count);
    free(w->post_topic);
    free(w->post_root);
    for (uint32_t t = 0; t < LG_TOPICS; t++)
        free(w->topic_posts[t]);
    free(w->likes.slots);
    free(w->follows.slots);
    free(w);
}

uint64_t lg_world_made(const lg_world_t *w)
{
    return w->made;
}

static uint64_t now_ms(const lg_world_t *w)
{
    return w->o.start_ms + (uint64_t)((double)w->made * (double)w->span_ms / (double)w->o.events);
}

static reel_str_t str(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

/* A user's topic: the favourite mostly, else one by interest. */
static uint32_t user_topic(lg_world_t *w, uint64_t user_idx)
{
    if (rnd_below(w, 10) < 7)
        return w->fav_topic[user_idx];
    return (uint32_t)zipf_draw(w, w->topic_cdf, LG_TOPICS);
}

/* A post of topic t, recent ones likelier; 0 when the topic has none. */
static uint64_t topic_post(lg_world_t *w, uint32_t t)
{
    uint32_t n = w->topic_n[t];
    if (n == 0)
        return 0;
    double u = rnd01(w);
    uint64_t back = (uint64_t)((double)n * u * u * u);
    return w->topic_posts[t][n - 1 - (back < n ? back : n - 1)];
}

/* A post for user u to interact with: of a topic they like, else any. */
static uint64_t pick_post(lg_world_t *w, uint64_t u)
{
    uint64_t p = topic_post(w, user_topic(w, u));
    return p != 0 ? p : 1 + rnd_below(w, w->posts_made);
}

static int post_add(lg_world_t *w, uint64_t id, uint32_t t)
{
    if (w->topic_n[t] == w->topic_cap[t]) {
        uint32_t cap = w->topic_cap[t] ? w->topic_cap[t] * 2 : 256;
        uint32_t *p = realloc(w->topic_posts[t], cap * sizeof(*p));
        REEL_ASSERT(p != NULL); /* a few MiB at most: treated as fatal */
        w->topic_posts[t] = p;
        w->topic_cap[t] = cap;
    }
    w->topic_posts[t][w->topic_n[t]++] = (uint32_t)id;
    w->post_topic[id] = (uint8_t)t;
    return 0;
}

/* The fields of a new post (direct or by generation): topic, words,
 * remix parent. */
static void new_post_plan(lg_world_t *w, uint64_t user_idx)
{
    w->gen_topic = user_topic(w, user_idx);
    w->gen_w1 = (uint32_t)rnd_below(w, LG_WORDS);
    w->gen_w2 = (uint32_t)rnd_below(w, LG_WORDS);
    w->gen_w3 = (uint32_t)rnd_below(w, LG_WORDS);
    w->gen_remix = w->gen_root = 0;
    if (w->posts_made > 0 && rnd_below(w, 100) < w->o.remix_pct) {
        uint64_t parent = topic_post(w, w->gen_topic);
        if (parent != 0) {
            w->gen_remix = parent;
            w->gen_root = w->post_root[parent] ? w->post_root[parent] : parent;
        }
    }
    const char *const *words = topic_words[w->gen_topic];
    snprintf(w->prompt, sizeof(w->prompt), "a %s %s with a %s, %s style", words[w->gen_w1],
             words[w->gen_w2], words[w->gen_w3], topic_names[w->gen_topic]);
}

static void fill_post(lg_world_t *w, reel_event_t *ev, uint64_t id, uint64_t author, uint64_t gen)
{
    ev->type = REEL_EV_POST_CREATED;
    ev->post = id;
    ev->user = author;
    snprintf(w->uri, sizeof(w->uri), "lg://video/%" PRIu64 ".mp4", id);
    ev->video_uri = str(w->uri);
    ev->prompt = str(w->prompt);
    ev->ntags = 2;
    ev->tags[0] = str(topic_names[w->gen_topic]);
    ev->tags[1] = str(topic_words[w->gen_topic][w->gen_w1]);
    ev->remix_of = w->gen_remix;
    ev->remix_root = w->gen_root;
    ev->visibility = str("public");
    ev->generation = gen;
    w->posts_made++;
    REEL_ASSERT(id == w->posts_made);
    w->post_root[id] = (uint32_t)w->gen_root;
    post_add(w, id, w->gen_topic);
}

/* The next step of the generation in progress. */
static void gen_step(lg_world_t *w, reel_event_t *ev, bool *joined)
{
    uint64_t t = now_ms(w);
    switch (w->gen_step) {
    case GEN_CLAIMED:
        ev->type = REEL_EV_GENERATION_CLAIMED;
        ev->generation = w->gen_id;
        ev->worker = str("lg-worker-1");
        ev->attempt = 1;
        ev->lease_until = t + 60000;
        w->gen_step = GEN_COMPLETED;
        break;
    case GEN_COMPLETED:
        w->gen_post = w->posts_made + 1;
        ev->type = REEL_EV_GENERATION_COMPLETED;
        ev->generation = w->gen_id;
        ev->worker = str("lg-worker-1");
        ev->post = w->gen_post;
        snprintf(w->uri, sizeof(w->uri), "lg://video/%" PRIu64 ".mp4", w->gen_post);
        ev->video_uri = str(w->uri);
        ev->duration_ms = 5000 + (w->gen_post * 7919) % 10000;
        ev->publish = true;
        w->gen_step = GEN_POST;
        break;
    default:
        REEL_ASSERT(w->gen_step == GEN_POST);
        fill_post(w, ev, w->gen_post, w->gen_user, w->gen_id);
        *joined = true;
        w->gen_step = GEN_NONE;
        break;
    }
}

/* Starts a post: through a generation (its first event) or directly. */
static void start_post(lg_world_t *w, reel_event_t *ev)
{
    uint64_t day = now_ms(w) / 86400000ull;
    uint64_t u = w->burst_left > 0 ? w->gen_user - 1
                                   : zipf_draw(w, w->author_cdf, w->o.users);
    bool fits = w->made + 4 <= w->o.events && w->posts_made + 1 <= w->o.posts;
    if (w->gen_day[u] != day) {
        w->gen_day[u] = (uint32_t)day;
        w->gen_count[u] = 0;
    }
    bool gen = fits && w->gen_count[u] < LG_GEN_PER_DAY &&
               (w->burst_left > 0 || rnd_below(w, 100) < w->o.gen_pct);
    new_post_plan(w, u);
    if (!gen) {
        w->burst_left = 0;
        fill_post(w, ev, w->posts_made + 1, u + 1, 0);
        return;
    }
    if (w->burst_left == 0)
        w->burst_left = 1 + (uint32_t)rnd_below(w, 4); /* a burst of 1..4 */
    w->burst_left--;
    w->gen_count[u]++;
    w->gen_user = u + 1;
    w->gen_id = ++w->gens_made;
    ev->type = REEL_EV_GENERATION_REQUESTED;
    ev->generation = w->gen_id;
    ev->user = u + 1;
    ev->prompt = str(w->prompt);
    ev->remix_of = w->gen_remix;
    ev->ntags = 2;
    ev->tags[0] = str(topic_names[w->gen_topic]);
    ev->tags[1] = str(topic_words[w->gen_topic][w->gen_w1]);
    w->gen_step = GEN_CLAIMED;
}

static bool follow_one(lg_world_t *w, reel_event_t *ev, uint64_t follower)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t target = zipf_draw(w, w->follow_cdf, w->o.users);
        if (target == follower || !set_add(&w->follows, follower << 32 | target))
            continue;
        ev->type = REEL_EV_FOLLOW_CREATED;
        ev->user = follower + 1;
        ev->target = target + 1;
        return true;
    }
    return false;
}

static void view_one(lg_world_t *w, reel_event_t *ev, uint64_t u, uint64_t p)
{
    uint64_t duration = 5000 + (p * 7919) % 10000;
    double f = sqrt(rnd01(w)) * 1.3;
    ev->type = REEL_EV_VIEW_RECORDED;
    ev->user = u + 1;
    ev->post = p;
    ev->completed = f >= 1.0;
    ev->watch_ms = ev->completed ? duration : (uint64_t)((double)duration * f) + 1;
}

/* What a draw that found no follow to make gives instead: a new display
 * name (always valid). */
static void rename_one(lg_world_t *w, reel_event_t *ev, uint64_t u)
{
    snprintf(w->name, sizeof(w->name), "User %" PRIu64 " (%" PRIu64 ")", u + 1, w->made);
    ev->type = REEL_EV_USER_UPDATED;
    ev->user = u + 1;
    ev->display_name = str(w->name);
}

/* One action of the mix (a post exists). */
static void act(lg_world_t *w, reel_event_t *ev)
{
    uint64_t u = rnd_below(w, w->o.users);
    uint32_t r = (uint32_t)rnd_below(w, w->mix_total), a = 0;
    while (r >= w->o.mix[a]) {
        r -= w->o.mix[a];
        a++;
    }
    uint64_t p = pick_post(w, u);
    const char *const *words = topic_words[w->post_topic[p]];
    switch (a) {
    case LG_LIKE:
        if (!set_add(&w->likes, u << 32 | p))
            break; /* liked already: a view instead */
        ev->type = REEL_EV_LIKE_CREATED;
        ev->user = u + 1;
        ev->post = p;
        return;
    case LG_COMMENT:
        ev->type = REEL_EV_COMMENT_CREATED;
        ev->comment = ++w->comments_made;
        ev->post = p;
        ev->user = u + 1;
        snprintf(w->text, sizeof(w->text), "love the %s!", words[rnd_below(w, LG_WORDS)]);
        ev->text = str(w->text);
        return;
    case LG_FEEDBACK:
        ev->type = REEL_EV_FEEDBACK_RECORDED;
        ev->user = u + 1;
        ev->post = p;
        ev->kind = str(feedback_kinds[rnd_below(w, 4)]);
        return;
    case LG_FOLLOW:
        if (follow_one(w, ev, u))
            return;
        break;
    default:
        break;
    }
    view_one(w, ev, u, p);
}

bool lg_world_next(lg_world_t *w, reel_event_t *ev, uint64_t *at_ms, bool *joined)
{
    memset(ev, 0, sizeof(*ev));
    *joined = false;
    if (w->made >= w->o.events)
        return false;
    *at_ms = now_ms(w);
    if (w->users_made < w->o.users) {
        uint64_t id = ++w->users_made;
        w->fav_topic[id - 1] = (uint8_t)zipf_draw(w, w->topic_cdf, LG_TOPICS);
        snprintf(w->handle, sizeof(w->handle), "u%" PRIu64, id);
        snprintf(w->name, sizeof(w->name), "User %" PRIu64, id);
        ev->type = REEL_EV_USER_CREATED;
        ev->user = id;
        ev->handle = str(w->handle);
        ev->display_name = str(w->name);
    } else if (w->first_made < w->first_follows) {
        /* the setup phase: users in turn, --follows each on average */
        uint64_t follower = w->first_made++ % w->o.users;
        if (!follow_one(w, ev, follower))
            rename_one(w, ev, follower);
        } else if (w->gen_step != GEN_NONE) {
        gen_step(w, ev, joined);
    } else {
        uint64_t activity = w->o.events - w->activity_start;
        uint64_t done = w->made - w->activity_start;
        bool post_due = w->posts_made < w->o.posts &&
                        (w->posts_made == 0 || w->burst_left > 0 ||
                         (double)done * (double)w->o.posts >= (double)w->posts_made * (double)activity);
        if (post_due)
            start_post(w, ev);
        else if (w->posts_made > 0)
            act(w, ev);
        else if (!follow_one(w, ev, rnd_below(w, w->o.users)))
            rename_one(w, ev, rnd_below(w, w->o.users));
    }
    w->made++;
    return true;
}

/* ---- straight to a data directory ---- */

/* Events per chunk, and its arena: an event encodes to ~30-120 bytes. */
#define LG_CHUNK_EVENTS 16384u
#define LG_CHUNK_BYTES (4u << 20)
/* Bytes one event may take in the arena at most (a post.created without
 * an embedding and with short strings stays far below). */
#define LG_EVENT_BYTES_MAX 4096u
/* Chunks in flight: 8 x 16384 = 131072 records, twice the log's queue
 * bound (REEL_QUEUE_RECORDS_MAX), so the writer never starves. */
#define LG_CHUNKS 8u

typedef struct lg_chunk lg_chunk_t;

/* The writer's shared state; mu guards the counters. */
typedef struct lg_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status;           /* first failed append */
    uint64_t answered;    /* requests answered */
} lg_sink_t;

struct lg_chunk {
    lg_sink_t *sink;
    uint8_t *arena;
    uint32_t used;
    reel_log_entry_t entries[LG_CHUNK_EVENTS + 1];
    reel_log_append_req_t reqs[LG_CHUNK_EVENTS + 1];
    uint32_t nentries;
    uint32_t nreqs;
    uint32_t pending;     /* requests not yet answered (under sink->mu) */
};

static void lg_append_cb(reel_log_append_req_t *req, int status)
{
    lg_chunk_t *c = req->data;
    lg_sink_t *s = c->sink;
    pthread_mutex_lock(&s->mu);
    if (status != 0 && s->status == 0)
        s->status = status;
    c->pending--;
    s->answered++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until chunk c has no request in flight. */
static void chunk_wait(lg_sink_t *s, lg_chunk_t *c)
{
    pthread_mutex_lock(&s->mu);
    while (c->pending > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Fills c with the world's next events, cut into groups. Returns the
 * number of events (0: the world is done). */
static uint32_t chunk_fill(lg_world_t *w, lg_chunk_t *c, uint32_t group, int *err)
{
    reel_event_t ev;
    uint64_t at;
    bool joined;
    bool join_next = false; /* a generation.completed wants its post in its group */
    c->used = c->nentries = c->nreqs = 0;
    while (join_next ||
           (c->nentries < LG_CHUNK_EVENTS && c->used + LG_EVENT_BYTES_MAX <= LG_CHUNK_BYTES)) {
        reel_log_append_req_t *r = c->nreqs ? &c->reqs[c->nreqs - 1] : NULL;
        if (!lg_world_next(w, &ev, &at, &joined))
            break;
        REEL_ASSERT(joined == join_next); /* the post follows its completion at once */
        int len = reel_event_encode(&ev, c->arena + c->used, LG_CHUNK_BYTES - c->used);
        if (len < 0) {
            *err = len; /* a bug of the world: its events are valid by construction */
            return 0;
        }
        c->entries[c->nentries] = (reel_log_entry_t){ev.type, (uint32_t)len, c->arena + c->used};
        c->used += (uint32_t)len;
        if (r == NULL || (r->count >= group && !joined)) {
            r = &c->reqs[c->nreqs++];
            memset(r, 0, sizeof(*r));
            r->entries = &c->entries[c->nentries];
            r->time_ms = at;
            r->cb = lg_append_cb;
            r->data = c;
        }
        r->count++;
        c->nentries++;
        join_next = ev.type == REEL_EV_GENERATION_COMPLETED;
    }
    return c->nentries;
}

static int chunk_submit(reel_log_t *log, lg_sink_t *s, lg_chunk_t *c)
{
    pthread_mutex_lock(&s->mu);
    c->pending = c->nreqs;
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < c->nreqs; i++) {
        int rc;
        while ((rc = reel_log_submit(log, &c->reqs[i])) == REEL_EFULL) {
            /* the queue is at its bound: wait for an answer, then retry */
            pthread_mutex_lock(&s->mu);
            uint64_t seen = s->answered;
            while (s->answered == seen && s->status == 0)
                pthread_cond_wait(&s->cv, &s->mu);
            pthread_mutex_unlock(&s->mu);
        }
        if (rc != 0) {
            pthread_mutex_lock(&s->mu);
            c->pending -= c->nreqs - i; /* never submitted: no callback */
            if (s->status == 0)
                s->status = rc;
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
    }
    return 0;
}

/* Writes the world into the log at dir/log. */
static int write_log(const lg_opts_t *o, const char *dir, bool quiet)
{
    char log_dir[PATH_MAX], err[512] = "";
    reel_log_t *log = NULL;
    lg_world_t *w = NULL;
    lg_chunk_t *chunks = calloc(LG_CHUNKS, sizeof(*chunks));
    lg_sink_t sink = {.status = 0};
    reel_log_options_t lo = {0};
    int rc = chunks ? lg_world_new(o, &w) : -ENOMEM;
    if (rc == 0 && (rc = reel_data_log_path(dir, log_dir, sizeof(log_dir))) == 0 &&
        (rc = reel_log_open(log_dir, &lo, &log, err, sizeof(err))) != 0)
        fprintf(stderr, "reel loadgen: %s\n", err[0] ? err : reel_strerror(rc));
    if (rc == 0 && reel_log_end(log) != 0) {
        fprintf(stderr, "reel loadgen: %s holds %" PRIu64 " events: loadgen writes a new data "
                        "directory\n", dir, reel_log_end(log));
        rc = REEL_EUSAGE;
    }
    pthread_mutex_init(&sink.mu, NULL);
    pthread_cond_init(&sink.cv, NULL);
    for (uint32_t i = 0; rc == 0 && i < LG_CHUNKS; i++) {
        chunks[i].sink = &sink;
        if ((chunks[i].arena = malloc(LG_CHUNK_BYTES)) == NULL)
            rc = -ENOMEM;
    }
    tool_progress_t prog;
    tool_progress_start(&prog, "events", o->events);
    prog.on = prog.on && !quiet;
    for (uint64_t k = 0; rc == 0; k++) {
        lg_chunk_t *c = &chunks[k % LG_CHUNKS];
        chunk_wait(&sink, c);
        if (sink.status != 0 || chunk_fill(w, c, o->group, &rc) == 0)
            break;
        rc = chunk_submit(log, &sink, c);
        tool_progress_draw(&prog, lg_world_made(w)); /* a chunk: thousands of events */
    }
    for (uint32_t i = 0; chunks != NULL && i < LG_CHUNKS; i++)
        chunk_wait(&sink, &chunks[i]);
    tool_progress_end(&prog, w != NULL ? lg_world_made(w) : 0);
    if (rc == 0)
        rc = sink.status;
    if (rc != 0 && rc != REEL_EUSAGE)
        fprintf(stderr, "reel loadgen: writing the log: %s\n", reel_strerror(rc));
    int rc_close = log ? reel_log_close(log) : 0;
    if (rc == 0 && rc_close != 0) {
        fprintf(stderr, "reel loadgen: closing the log: %s\n", reel_strerror(rc_close));
        rc = rc_close;
    }
    for (uint32_t i = 0; chunks != NULL && i < LG_CHUNKS; i++)
        free(chunks[i].arena);
    free(chunks);
    pthread_cond_destroy(&sink.cv);
    pthread_mutex_destroy(&sink.mu);
    lg_world_free(w);
    return rc;
}

static void fold_progress(void *ctx, uint64_t applied, uint64_t to)
{
    tool_progress_t *p = ctx;
    p->total = to;
    tool_progress_draw(p, applied);
}

/* Folds the new log into the views (as `reel rebuild`). */
static int fold_views(const char *dir, bool quiet)
{
    char log_dir[PATH_MAX], views_dir[PATH_MAX], err[512] = "";
    reel_log_options_t lo = {.read_only = true};
    reel_log_t *log = NULL;
    reel_views_t *v = NULL;
    int rc = reel_data_log_path(dir, log_dir, sizeof(log_dir));
    if (rc == 0)
        rc = reel_data_views_path(dir, views_dir, sizeof(views_dir));
    if (rc == 0 && (rc = reel_log_open(log_dir, &lo, &log, err, sizeof(err))) != 0)
        fprintf(stderr, "reel loadgen: %s\n", err);
    if (rc == 0 && (rc = reel_views_open(views_dir, &v)) != 0)
        fprintf(stderr, "reel loadgen: %s: %s\n", views_dir, reel_strerror(rc));
    tool_progress_t prog;
    tool_progress_start(&prog, "events folded", 0);
    prog.on = prog.on && !quiet;
    if (rc == 0 && (rc = reel_replay(log, v, UINT64_MAX, fold_progress, &prog, err,
                                     sizeof(err))) != 0)
        fprintf(stderr, "reel loadgen: folding the views: %s\n", err);
    tool_progress_end(&prog, prog.total);
    reel_views_close(v);
    if (log != NULL)
        (void)reel_log_close(log);
    return rc;
}

int lg_write_data(const lg_opts_t *o, const char *dir, bool views, bool quiet,
                  uint64_t *log_ns, uint64_t *views_ns)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "reel loadgen: %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    int lock = reel_data_lock(dir); /* no reeld beside us */
    if (lock < 0) {
        fprintf(stderr, "reel loadgen: %s: %s\n", dir,
                lock == REEL_ELOCKED ? "in use by another process (reeld?)" : reel_strerror(lock));
        return lock;
    }
    reel_data_unlock(lock); /* the log's own open takes it again */
    uint64_t t0 = reel_mono_ns();
    int rc = write_log(o, dir, quiet);
    uint64_t t1 = reel_mono_ns();
    *log_ns = t1 - t0;
    *views_ns = 0;
    if (rc == 0 && views) {
        rc = fold_views(dir, quiet);
        *views_ns = reel_mono_ns() - t1;
    }
    return rc;
}

/* ---- the command ---- */

static void loadgen_usage(FILE *f)
{
    fprintf(f,
            "usage: reel loadgen (--data DIR [--no-views] | --server URL [--conns N]\n"
            "                    [--token-file F]) [--users N] [--posts N] [--events N]\n"
            "                    [--follows N] [--seed S] [--days D] [--start MS] [--group N]\n"
            "                    [--mix view=60,like=25,comment=6,feedback=4,follow=5]\n"
            "                    [--gen-pct P] [--remix-pct P]\n"
            "\n"
            "A synthetic world, the same for the same options and seed: users with Zipf-\n"
            "distributed followers (a few creators with tens of thousands), topics with\n"
            "skewed interest (prompts and tags from topic words), generation bursts within\n"
            "the quota (requested, claimed, completed with the post), direct posts,\n"
            "remixes, then views (watch time, completion), likes, comments, feedback and\n"
            "follows in the proportions of --mix. Times come from a synthetic clock: the\n"
            "events spread evenly over --days from --start (default 2026-01-01T00:00:00Z).\n"
            "\n"
            "  --data DIR     write a new data directory directly: events valid by\n"
            "                 construction, appended to the log in groups of --group\n"
            "                 (default 256; each group carries its first event's time),\n"
            "                 many in flight; then the views are folded from the log\n"
            "                 (--no-views: left to the next open, which folds them)\n"
            "  --server URL   send the world's commands to reeld (http://HOST:PORT) over\n"
            "                 --conns keep-alive connections (default 8): users, then\n"
            "                 follows and posts, then the rest; prints the rate and the\n"
            "                 latency percentiles of each phase (generations become\n"
            "                 direct posts: no render worker is simulated)\n"
            "  --users N      users (default 100000)\n"
            "  --posts N      posts over the run (default 20000)\n"
            "  --events N     events in all (default 1000000)\n"
            "  --follows N    first follows per user, on average (default 20; at most\n"
            "                 half the events after the users are first follows)\n"
            "  --seed S       the world's seed (default 1)\n"
            "\n"
            "exit status: 0 done; 2 bad usage, or a failure (message on stderr)\n");
}

typedef struct lg_cli {
    lg_opts_t o;
    const char *data;
    const char *server;
    const char *token_file;
    uint64_t conns;
    bool no_views;
} lg_cli_t;

static int lg_num(int argc, char **argv, int *i, const char *name, uint64_t *out, int *bad)
{
    const char *v = NULL;
    int rc = tool_opt_value(argc, argv, i, name, &v);
    if (rc < 0 || (rc == 1 && tool_parse_u64(v, out) != 0)) {
        fprintf(stderr, "reel loadgen: %s needs a number\n", name);
        *bad = 1;
    }
    return rc;
}

static int lg_parse(int argc, char **argv, lg_cli_t *c)
{
    uint64_t group = 256, gen = 70, remix = 10;
    int bad = 0;
    memset(c, 0, sizeof(*c));
    lg_opts_default(&c->o);
    c->conns = 8;
    for (int i = 1; i < argc && !bad; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            loadgen_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--no-views") == 0) {
            c->no_views = true;
        } else if (tool_opt_value(argc, argv, &i, "--data", &v) == 1) {
            c->data = v;
        } else if (tool_opt_value(argc, argv, &i, "--server", &v) == 1) {
            c->server = v;
        } else if (tool_opt_value(argc, argv, &i, "--token-file", &v) == 1) {
            c->token_file = v;
        } else if (tool_opt_value(argc, argv, &i, "--mix", &v) == 1) {
            bad = lg_parse_mix(v, &c->o) != 0;
        } else if (lg_num(argc, argv, &i, "--users", &c->o.users, &bad) ||
                   lg_num(argc, argv, &i, "--posts", &c->o.posts, &bad) ||
                   lg_num(argc, argv, &i, "--events", &c->o.events, &bad) ||
                   lg_num(argc, argv, &i, "--follows", &c->o.follows, &bad) ||
                   lg_num(argc, argv, &i, "--seed", &c->o.seed, &bad) ||
                   lg_num(argc, argv, &i, "--days", &c->o.days, &bad) ||
                   lg_num(argc, argv, &i, "--start", &c->o.start_ms, &bad) ||
                   lg_num(argc, argv, &i, "--group", &group, &bad) ||
                   lg_num(argc, argv, &i, "--gen-pct", &gen, &bad) ||
                   lg_num(argc, argv, &i, "--remix-pct", &remix, &bad) ||
                   lg_num(argc, argv, &i, "--conns", &c->conns, &bad)) {
            continue;
        } else {
            fprintf(stderr, "reel loadgen: unknown or incomplete argument '%s' (see --help)\n",
                    argv[i]);
            return REEL_EUSAGE;
        }
    }
    if (bad)
        return REEL_EUSAGE;
    if ((c->data == NULL) == (c->server == NULL)) {
        fprintf(stderr, "reel loadgen: give one of --data DIR or --server URL\n");
        return REEL_EUSAGE;
    }
    if (group > 4000 || gen > 100 || remix > 100 || c->conns == 0 || c->conns > 256) {
        fprintf(stderr, "reel loadgen: --group 1..4000, --gen-pct and --remix-pct 0..100, "
                        "--conns 1..256\n");
        return REEL_EUSAGE;
    }
    c->o.group = (uint32_t)group;
    c->o.gen_pct = (uint32_t)gen;
    c->o.remix_pct = (uint32_t)remix;
    return 0;
}

int reel_cmd_loadgen(int argc, char **argv)
{
    lg_cli_t c;
    int rc = lg_parse(argc, argv, &c);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (lg_opts_check(&c.o) != 0)
        return 2; /* before anything is created or sent */
    if (c.server != NULL)
        return lg_run_server(&c.o, c.server, (uint32_t)c.conns, c.token_file) == 0 ? 0 : 2;
    uint64_t log_ns = 0, views_ns = 0;
    rc = lg_write_data(&c.o, c.data, !c.no_views, false, &log_ns, &views_ns);
    if (rc != 0)
        return 2;
    double ls = (double)log_ns / 1e9, vs = (double)views_ns / 1e9;
    printf("reel loadgen: %" PRIu64 " events (%" PRIu64 " users, %" PRIu64 " posts, seed %"
           PRIu64 ") written to %s/log in %.2f s: %.0f events/s\n", c.o.events, c.o.users,
           c.o.posts, c.o.seed, c.data, ls, ls > 0 ? (double)c.o.events / ls : 0.0);
    if (!c.no_views)
        printf("reel loadgen: views folded in %.2f s: %.0f events/s\n", vs,
               vs > 0 ? (double)c.o.events / vs : 0.0);
    else
        printf("reel loadgen: views left to the next open (reeld or reel rebuild folds them)\n");
    return 0;
}
