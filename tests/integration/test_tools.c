/*
 * test_tools.c: `reel stat`, `reel inspect` and `reel export`, run as a
 * user runs them (fork and exec $REEL_BIN/reel) on a small data directory
 * built through the engine's API: the counts stat prints, inspect's JSON
 * and --history, and export's files read back in C and by Python's csv
 * and json modules, which must agree value for value.
 *
 * REEL_BIN is the build directory (the Makefile sets it); ./build when
 * unset.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "tests/harness.h"

static char tmp[PATH_MAX];
static char data_dir[PATH_MAX + 8];
static char out_dir[PATH_MAX + 8];

/* What the world holds: ids the tests look up. */
static uint64_t alice, bob, carol, post1, post2, remix, comment1;

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static uint64_t must(reel_engine_t *e, reel_cmd_kind_t kind, reel_event_t args, int status)
{
    reel_cmd_result_t r = reel_test_cmd(e, kind, 0, args);
    reel_test_expect(r, status, NULL);
    return r.id;
}

/* 3 users, 2 follows, 3 posts (one a remix, with a comma and a quote in
 * its prompt), 3 likes, 1 comment with a newline, 1 view. */
static void build_world(void)
{
    char err[256];
    reel_engine_t *e = NULL;
    reel_engine_options_t o = {.log = {.segment_size = 256 << 10}};
    cr_assert_eq(reel_engine_open(data_dir, &o, &e, err, sizeof(err)), 0, "open: %s", err);
    alice = must(e, REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("alice")}, 201);
    bob = must(e, REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("bob"),
                                                       .display_name = S("Bob \"B\", Jr.")}, 201);
    carol = must(e, REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("carol")}, 201);
    must(e, REEL_CMD_FOLLOW, (reel_event_t){.user = bob, .target = alice}, 200);
    must(e, REEL_CMD_FOLLOW, (reel_event_t){.user = carol, .target = alice}, 200);
    reel_event_t p = {.user = alice, .video_uri = S("file:///a.gif"), .prompt = S("a dog, \"happy\""),
                      .visibility = S("public"), .ntags = 2};
    p.tags[0] = S("dogs");
    p.tags[1] = S("fun,times");
    post1 = must(e, REEL_CMD_POST_CREATE, p, 201);
    p.prompt = S("second");
    p.ntags = 0;
    post2 = must(e, REEL_CMD_POST_CREATE, p, 201);
    p.user = bob;
    p.remix_of = post1;
    p.prompt = S("remix");
    remix = must(e, REEL_CMD_POST_CREATE, p, 201);
    must(e, REEL_CMD_LIKE, (reel_event_t){.user = bob, .post = post1}, 200);
    must(e, REEL_CMD_LIKE, (reel_event_t){.user = carol, .post = post1}, 200);
    must(e, REEL_CMD_LIKE, (reel_event_t){.user = carol, .post = post2}, 200);
    comment1 = must(e, REEL_CMD_COMMENT_CREATE,
                    (reel_event_t){.user = carol, .post = post1, .text = S("line1\nline2")}, 201);
    must(e, REEL_CMD_VIEW, (reel_event_t){.user = bob, .post = post1, .watch_ms = 1500}, 200);
    cr_assert_eq(reel_engine_close(e), 0);
}

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "tools");
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmp);
    snprintf(out_dir, sizeof(out_dir), "%s/out", tmp);
    build_world();
}

static void teardown(void)
{
    if (getenv("REEL_TEST_KEEP") == NULL) /* keep the files to look at a failure */
        reel_test_rmtree(tmp);
}

TestSuite(tools, .init = setup, .fini = teardown, .timeout = 60);

typedef reel_test_run_t run_t;
#define run_reel(...) reel_test_reel_run(tmp, __VA_ARGS__)
#define run_free reel_test_run_free
#define slurp reel_test_slurp

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, s);
    return j;
}

static json_int_t get_int(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    cr_assert(json_is_integer(v), "%s.%s is not an integer", path1, path2 ? path2 : "");
    return json_integer_value(v);
}

Test(tools, stat_counts)
{
    run_t r = run_reel("stat", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse(r.out);
    cr_assert_eq(get_int(j, "events", NULL), 13);
    cr_assert_eq(get_int(j, "by_type", "user.created"), 3);
    cr_assert_eq(get_int(j, "by_type", "follow.created"), 2);
    cr_assert_eq(get_int(j, "by_type", "post.created"), 3);
    cr_assert_eq(get_int(j, "by_type", "like.created"), 3);
    cr_assert_eq(get_int(j, "by_type", "comment.created"), 1);
    cr_assert_eq(get_int(j, "by_type", "view.recorded"), 1);
    cr_assert_geq(get_int(j, "segments", "count"), 1);
    json_t *days = json_object_get(j, "by_day");
    cr_assert_eq(json_object_size(days), 1); /* all of it just now */
    const char *k;
    json_t *v;
    json_object_foreach(days, k, v) cr_assert_eq(json_integer_value(v), 13);
    /* carol: created, follow, 2 likes, comment = 5; alice: created, 2 posts = 3;
     * bob: created, follow, remix, like, view = 5. Ties: lower id first. */
    json_t *top = json_object_get(j, "top_users");
    cr_assert_eq(json_array_size(top), 3);
    cr_assert_eq(get_int(json_array_get(top, 0), "user_id", NULL), (json_int_t)bob);
    cr_assert_eq(get_int(json_array_get(top, 0), "events", NULL), 5);
    cr_assert_eq(get_int(json_array_get(top, 1), "user_id", NULL), (json_int_t)carol);
    cr_assert_eq(get_int(json_array_get(top, 2), "user_id", NULL), (json_int_t)alice);
    cr_assert_eq(get_int(json_array_get(top, 2), "events", NULL), 3);
    json_decref(j);
    run_free(&r);

    r = run_reel("stat", "--data", data_dir, NULL); /* text */
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "post.created") != NULL, "%s", r.out);
    run_free(&r);
}

Test(tools, usage_errors)
{
    const char *bad[][6] = {
        {"stat", "--bogus", NULL},
        {"inspect", "--data", "x", NULL},
        {"inspect", "--data", "x", "widget", "1", NULL},
        {"inspect", "--data", "x", "user", "abc", NULL},
        {"export", "--data", "x", NULL},
        {"export", "--out", "y", "--format", "xml", NULL},
        {"export", "--out", "y", "--types", "nope.nope", NULL},
        {"export", "--out", "y", "--from", "-1", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_t r = run_reel(bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], bad[i][5],
                           NULL);
        cr_assert_eq(r.status, 2, "case %zu", i);
        cr_assert(strlen(r.err) > 0, "case %zu: no message", i);
        run_free(&r);
    }
    const char *cmds[] = {"stat", "inspect", "export"};
    for (size_t i = 0; i < 3; i++) {
        run_t r = run_reel(cmds[i], "--help", NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "usage: reel") != NULL);
        run_free(&r);
    }
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/nothing", tmp);
    run_t r = run_reel("stat", "--data", missing, NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    r = run_reel("inspect", "--data", missing, "user", "1", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_eq(access(missing, F_OK), -1, "inspect created %s", missing);
    run_free(&r);
}

Test(tools, inspect_records)
{
    char id[32];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)alice);
    run_t r = run_reel("inspect", "--data", data_dir, "user", id, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse(r.out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "handle")), "alice");
    cr_assert_eq(get_int(j, "counts", "followers"), 2);
    cr_assert_eq(get_int(j, "counts", "posts"), 2);
    cr_assert_eq(get_int(j, "counts", "likes_received"), 3);
    cr_assert_eq(get_int(j, "counts", "remixes_received"), 1);
    json_decref(j);
    run_free(&r);

    snprintf(id, sizeof(id), "%llu", (unsigned long long)post1);
    r = run_reel("inspect", "--data", data_dir, "post", id, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    j = parse(r.out);
    cr_assert_eq(get_int(j, "author", NULL), (json_int_t)alice);
    cr_assert_eq(get_int(j, "counts", "likes"), 2);
    cr_assert_eq(get_int(j, "counts", "comments"), 1);
    cr_assert_eq(get_int(j, "counts", "remixes"), 1);
    cr_assert_eq(get_int(j, "counts", "views"), 1);
    cr_assert_eq(get_int(j, "counts", "watch_ms"), 1500);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "body"), "prompt")),
                     "a dog, \"happy\"");
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "body"), "tags")), 2);
    json_decref(j);
    run_free(&r);

    r = run_reel("inspect", "--data", data_dir, "post", "999999", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "not found") != NULL, "%s", r.err);
    cr_assert_eq(r.out[0], '\0');
    run_free(&r);
    r = run_reel("inspect", "--data", data_dir, "generation", "5", NULL);
    cr_assert_eq(r.status, 1);
    run_free(&r);
}

/* The "type" of each JSON line of s, in order, joined by spaces. */
static void types_of(char *s, char *buf, size_t len)
{
    buf[0] = '\0';
    for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_t *j = parse(line);
        strncat(buf, json_string_value(json_object_get(j, "type")), len - strlen(buf) - 2);
        strcat(buf, " ");
        json_decref(j);
    }
}

Test(tools, inspect_history)
{
    char id[32], types[1024];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)post1);
    run_t r = run_reel("inspect", "--data", data_dir, "post", id, "--history", NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    char *history = strchr(r.out, '\n') + 1; /* after the record */
    types_of(history, types, sizeof(types));
    cr_assert_str_eq(types, "post.created post.created like.created like.created "
                            "comment.created view.recorded ");
    run_free(&r);

    snprintf(id, sizeof(id), "%llu", (unsigned long long)carol);
    r = run_reel("inspect", "--data", data_dir, "user", id, "--history", NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    history = strchr(r.out, '\n') + 1;
    types_of(history, types, sizeof(types));
    cr_assert_str_eq(types, "user.created follow.created like.created like.created "
                            "comment.created ");
    run_free(&r);
}

/* Runs a Python snippet on the exports under dir; returns its exit
 * status (127: no python3, a failure too). */
static int python_in(const char *script, const char *dir)
{
    char path[PATH_MAX + 16], cmd[PATH_MAX * 2 + 64];
    snprintf(path, sizeof(path), "%s/check.py", tmp);
    cr_assert_eq(reel_test_write_file(path, script, strlen(script)), 0);
    snprintf(cmd, sizeof(cmd), "python3 %s %s", path, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int python(const char *script)
{
    return python_in(script, out_dir);
}

/* Decompresses every NAME.zst of src/sub into dst/sub/NAME with libzstd's
 * streaming decoder (what `zstd -d` runs), for machines without the zstd
 * program: the read-back never goes unchecked. */
static void unzstd_dir(const char *src, const char *dst, const char *sub)
{
    char sdir[PATH_MAX + 16], ddir[PATH_MAX + 16], path[PATH_MAX * 2];
    snprintf(sdir, sizeof(sdir), "%s/%s", src, sub);
    snprintf(ddir, sizeof(ddir), "%s/%s", dst, sub);
    mkdir(dst, 0755);
    cr_assert_eq(mkdir(ddir, 0755), 0);
    DIR *d = opendir(sdir);
    struct dirent *e;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".zst") != 0)
            continue;
        uint8_t *z;
        size_t zlen;
        snprintf(path, sizeof(path), "%s/%s", sdir, e->d_name);
        cr_assert_eq(reel_test_read_file(path, &z, &zlen), 0);
        size_t cap = 1u << 20, len = 0;
        uint8_t *plain = malloc(cap);
        ZSTD_DCtx *dc = ZSTD_createDCtx();
        ZSTD_inBuffer in = {z, zlen, 0};
        size_t rc = 1;
        while (in.pos < in.size || rc != 0) {
            if (len == cap)
                plain = realloc(plain, cap *= 2);
            ZSTD_outBuffer ob = {plain + len, cap - len, 0};
            rc = ZSTD_decompressStream(dc, &ob, &in);
            cr_assert(!ZSTD_isError(rc), "%s: %s", path, ZSTD_getErrorName(rc));
            len += ob.pos;
            cr_assert(ob.pos > 0 || in.pos < in.size || rc == 0, "%s: cut short", path);
        }
        ZSTD_freeDCtx(dc);
        snprintf(path, sizeof(path), "%s/%.*s", ddir, (int)(n - 4), e->d_name);
        cr_assert_eq(reel_test_write_file(path, plain, len), 0);
        free(plain);
        free(z);
    }
    closedir(d);
}

/* Python reads the CSV and the JSON lines of every type and finds the same
 * values: CSV cells are text, so each is compared with the JSON value as
 * docs/EXPORTS.md encodes it. */
static const char *py_compare =
    "import csv, json, glob, os, sys, io\n"
    "d = sys.argv[1]\n"
    "def opener(p):\n"
    "    if p.endswith('.zst'):\n"
    "        import subprocess\n"
    "        return io.StringIO(subprocess.run(['zstd', '-dc', p], capture_output=True,"
    " check=True).stdout.decode())\n"
    "    return open(p, newline='', encoding='utf-8')\n"
    "def enc(v):\n"
    "    if v is None: return ''\n"
    "    if isinstance(v, bool): return 'true' if v else 'false'\n"
    "    if isinstance(v, (list, dict)): return v\n"
    "    return str(v)\n"
    "n = 0\n"
    "for jp in sorted(glob.glob(d + '/jsonl/*.jsonl*')):\n"
    "    base = os.path.basename(jp).split('.jsonl')[0]\n"
    "    cp = [p for p in glob.glob(d + '/csv/' + base + '.csv*')][0]\n"
    "    rows = list(csv.DictReader(opener(cp)))\n"
    "    evs = [json.loads(l) for l in opener(jp)]\n"
    "    assert len(rows) == len(evs), (jp, len(rows), len(evs))\n"
    "    for r, e in zip(rows, evs):\n"
    "        assert list(r.keys()) == ['offset', 'at'] + [k for k in e if k not in"
    " ('offset','type','at')], (list(r.keys()), list(e))\n"
    "        for k, v in r.items():\n"
    "            want = enc(e[k])\n"
    "            got = json.loads(v) if isinstance(want, list) else v\n"
    "            assert got == want, (jp, k, got, want)\n"
    "        n += 1\n"
    "print(n)\n"
    "sys.exit(0 if n == int(os.environ.get('EXPECT', '-1')) else 3)\n";

static void export_both(const char *from, bool zstd)
{
    char jdir[PATH_MAX + 16], cdir[PATH_MAX + 16];
    snprintf(jdir, sizeof(jdir), "%s/jsonl", out_dir);
    snprintf(cdir, sizeof(cdir), "%s/csv", out_dir);
    mkdir(out_dir, 0755);
    run_t r = run_reel("export", "--data", data_dir, "--out", jdir, "--from", from,
                       zstd ? "--zstd" : NULL, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "next --from 13") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", data_dir, "--out", cdir, "--format", "csv", "--from", from,
                 zstd ? "--zstd" : NULL, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    run_free(&r);
}

Test(tools, export_read_back_by_python)
{
    export_both("0", false);
    /* C reads a file back: likes, in log order. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/csv/like.created.%020d.csv", out_dir, 0);
    char *csv = slurp(path);
    cr_assert(strncmp(csv, "offset,at,user_id,post_id\r\n", 27) == 0, "%s", csv);
    run_free(&(run_t){0, csv, NULL});
    snprintf(path, sizeof(path), "%s/csv/post.created.%020d.csv", out_dir, 0);
    csv = slurp(path);
    cr_assert(strstr(csv, "\"a dog, \"\"happy\"\"\"") != NULL, "%s", csv);
    cr_assert(strstr(csv, "\"[\"\"dogs\"\", \"\"fun,times\"\"]\"") != NULL ||
                  strstr(csv, "\"[\"\"dogs\"\",\"\"fun,times\"\"]\"") != NULL, "%s", csv);
    free(csv);
    setenv("EXPECT", "13", 1);
    cr_assert_eq(python(py_compare), 0, "python read the exports back differently");
}

Test(tools, export_zstd_types_and_resume)
{
    export_both("5", true); /* offsets 5..12: 3 posts, 3 likes, comment, view */
    setenv("EXPECT", "8", 1);
    if (system("command -v zstd >/dev/null 2>&1") == 0) /* the files as zstd -d reads them */
        cr_assert_eq(python(py_compare), 0, "python read the zstd exports back differently");
    char plain[PATH_MAX + 16];
    snprintf(plain, sizeof(plain), "%s/plain", tmp);
    unzstd_dir(out_dir, plain, "jsonl");
    unzstd_dir(out_dir, plain, "csv");
    cr_assert_eq(python_in(py_compare, plain), 0, "python read the decompressed exports back "
                                                  "differently");
    /* The same range again: refused, nothing overwritten, no .tmp left. */
    char jdir[PATH_MAX + 16];
    snprintf(jdir, sizeof(jdir), "%s/jsonl", out_dir);
    run_t r = run_reel("export", "--data", data_dir, "--out", jdir, "--from", "5", "--zstd", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "exists") != NULL, "%s", r.err);
    run_free(&r);
    /* --types, and the next increment from the end: nothing to write. */
    r = run_reel("export", "--data", data_dir, "--out", jdir, "--types", "like.created",
                 "--from", "13", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "0 events") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", data_dir, "--out", jdir, "--types",
                 "like.created,view.recorded", "--from", "0", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "4 events") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "2 files") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", data_dir, "--out", jdir, "--from", "14", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
}

/* Every event type, twice: once with every field at an awkward value
 * (quotes, backslashes, control characters, commas, CR/LF, non-ASCII,
 * the largest ids, an embedding of floats that print oddly: -0, integers,
 * 1e20, denormals), once with every optional field absent and every list
 * empty. Written straight to a log (reel_event_encode), so that no command
 * rule stands between the test and the export's writers. */
static void build_edge_log(const char *dir)
{
    char log_dir[PATH_MAX + 16];
    reel_log_t *log = NULL;
    static uint8_t buf[64 << 10];
    static const float emb[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 1e20f, 1e-20f, 1.17549435e-38f,
                                1e-45f, 3.4028235e38f, 123456789.0f, 16777216.0f, 0.5f,
                                -2.5e-7f, 1e9f, 1e-5f, 100.0f, 3.14159274f};
    uint8_t emb_le[sizeof(emb)];
    memcpy(emb_le, emb, sizeof(emb)); /* the test machines are little-endian */
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(log_dir, sizeof(log_dir), "%s/log", dir);
    cr_assert_eq(reel_log_open(log_dir, NULL, &log, NULL, 0), 0);
    const char *odd = "a \"q\" \\ b,\r\n\t\x01\x1f caf\xc3\xa9 \xe2\x9c\x93 /";
    for (int variant = 0; variant < 2; variant++) {
        reel_event_t ev = {0};
        bool full = variant == 0;
        ev.user = ev.target = ev.post = ev.generation = ev.comment = full ? (1ull << 53) - 1 : 1;
        ev.reply_to = ev.remix_of = ev.remix_root = ev.invited_by = full ? 42 : 0;
        ev.watch_ms = ev.duration_ms = ev.lease_until = ev.fingerprint = full ? (1ull << 53) - 1 : 0;
        ev.attempt = full ? 7 : 0;
        ev.completed = ev.publish = ev.retryable = full;
        reel_str_t s = full ? S(odd) : S("");
        ev.handle = full ? S("h_\xc3\xa9") : S("h");
        ev.display_name = ev.code = ev.asset = ev.policy = ev.prompt = ev.video_uri = s;
        ev.worker = ev.reason = ev.text = ev.kind = ev.visibility = ev.answer = s;
        ev.key = full ? S("k\"ey,1") : S("k");
        if (full) {
            ev.ncameos = 3;
            ev.cameos[0] = 1, ev.cameos[1] = 99, ev.cameos[2] = (1ull << 53) - 1;
            ev.ntags = 6;
            ev.tags[0] = S(""), ev.tags[1] = S("q\"t"), ev.tags[2] = S("n\nl\r\b\f\t");
            ev.tags[3] = S("\x01\x1f\\"), ev.tags[4] = S("comma,"), ev.tags[5] = S("\xc3\xbc/");
            ev.dim = sizeof(emb) / sizeof(emb[0]);
            ev.embedding = emb_le;
        }
        for (uint16_t t = 1; t <= REEL_EV_MAX; t++) {
            ev.type = t;
            int n = reel_event_encode(&ev, buf, sizeof(buf));
            cr_assert_gt(n, 0, "encoding %s: %d", reel_event_type_name(t), n);
            cr_assert_eq(reel_log_append(log, t, buf, (uint32_t)n, NULL), 0);
        }
    }
    cr_assert_eq(reel_log_close(log), 0);
}

/* The export writes JSON lines and CSV rows straight from the decoded
 * event; REEL_EXPORT_CHECK=all makes it compare every line with the
 * reference writers (reel_event_to_json; the JSON read back by jansson
 * for CSV) and fail on any difference. Python reads both back alike. */
Test(tools, export_fast_writers_match_the_reference)
{
    char edge[PATH_MAX + 16], jdir[PATH_MAX + 16], cdir[PATH_MAX + 16];
    snprintf(edge, sizeof(edge), "%s/edge", tmp);
    build_edge_log(edge);
    snprintf(jdir, sizeof(jdir), "%s/jsonl", out_dir);
    snprintf(cdir, sizeof(cdir), "%s/csv", out_dir);
    mkdir(out_dir, 0755);
    setenv("REEL_EXPORT_CHECK", "all", 1);
    run_t r = run_reel("export", "--data", edge, "--out", jdir, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "62 events") != NULL && strstr(r.err, "31 files") != NULL, "%s",
              r.err);
    run_free(&r);
    r = run_reel("export", "--data", edge, "--out", cdir, "--format", "csv", NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", edge, "--out", cdir, "--format", "csv", "--zstd", "--from",
                 "1", NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    run_free(&r);
    unsetenv("REEL_EXPORT_CHECK");
    /* The JSON lines are reel_event_to_json's, byte for byte. */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/post.created.%020d.jsonl", jdir, 0);
    char *got = slurp(path);
    cr_assert(strstr(got, "\"prompt\":\"a \\\"q\\\" \\\\ b,\\u000d\\u000a\\u0009\\u0001\\u001f "
                          "caf\xc3\xa9 \xe2\x9c\x93 /\"") != NULL, "%s", got);
    cr_assert(strstr(got, "\"embedding\":[0,-0,1,-1,0.100000001,1.00000002e+20,") != NULL, "%s",
              got);
    free(got);
    setenv("EXPECT", "62", 1);
    cr_assert_eq(python(py_compare), 0, "python read the edge exports back differently");
}

/* The progress line (tools/tool_util.h): never on a stderr that is not a
 * terminal, and with REEL_PROGRESS=1 (as if it were one) each long-running
 * command draws it with its rate and ends it at 100%. */
Test(tools, progress_line_only_on_a_terminal)
{
    char out[PATH_MAX + 16];
    const char *cmds[][8] = {
        {"stat", "--data", data_dir, NULL},
        {"export", "--data", data_dir, "--out", out, NULL},
        {"dump", "--data", data_dir, NULL},
        {"inspect", "--data", data_dir, "user", "1", "--history", NULL},
        {"verify", "--data", data_dir, NULL},
    };
    const char *units[] = {"events/s", "events/s", "records/s", "events/s", "bytes/s"};
    for (int forced = 0; forced < 2; forced++) {
        if (forced)
            setenv("REEL_PROGRESS", "1", 1);
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            snprintf(out, sizeof(out), "%s/p%d", tmp, forced);
            run_t r = run_reel(cmds[i][0], cmds[i][1], cmds[i][2], cmds[i][3], cmds[i][4],
                               cmds[i][5], NULL);
            cr_assert_eq(r.status, 0, "%s: %s", cmds[i][0], r.err);
            if (!forced) {
                cr_assert(strchr(r.err, '\r') == NULL, "%s drew on a file: %s", cmds[i][0], r.err);
            } else if (strcmp(cmds[i][0], "verify") == 0) { /* bytes of segment files */
                cr_assert(strstr(r.err, "(100%)") != NULL && strstr(r.err, units[i]) != NULL,
                          "%s: %s", cmds[i][0], r.err);
            } else {
                cr_assert(strstr(r.err, "\r  13 / 13 ") != NULL && strstr(r.err, "(100%)") != NULL &&
                              strstr(r.err, units[i]) != NULL, "%s: %s", cmds[i][0], r.err);
            }
            run_free(&r);
        }
    }
    unsetenv("REEL_PROGRESS");
}

/* ---- beside a running reeld ---- */

/* A digest of the log's segment files (names and bytes): it changes with
 * any write to them. */
static uint64_t log_digest(void)
{
    char log_dir[PATH_MAX + 16], path[PATH_MAX * 2];
    snprintf(log_dir, sizeof(log_dir), "%s/log", data_dir);
    DIR *d = opendir(log_dir);
    struct dirent *e;
    uint64_t h = 1469598103934665603ull, files = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        bool seg = (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0 &&
                    strncmp(e->d_name, "spare", 5) != 0) ||
                   (n > 5 && strcmp(e->d_name + n - 5, ".zseg") == 0);
        if (!seg)
            continue;
        uint8_t *img;
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", log_dir, e->d_name);
        cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
        uint64_t fh = 1469598103934665603ull; /* per file, summed: order-free */
        for (size_t i = 0; i < n; i++)
            fh = (fh ^ (uint8_t)e->d_name[i]) * 1099511628211ull;
        for (size_t i = 0; i < len; i++)
            fh = (fh ^ img[i]) * 1099511628211ull;
        free(img);
        h += fh;
        files++;
    }
    closedir(d);
    cr_assert_gt(files, 0);
    return h;
}

/* Polls (bounded) until path holds needle: the output is the condition
 * waited for. */
static bool file_has(const char *path, const char *needle, int seconds)
{
    uint64_t deadline = reel_test_now_ms() + (uint64_t)seconds * 1000;
    for (;;) {
        uint8_t *data;
        size_t len;
        if (reel_test_read_file(path, &data, &len) == 0) {
            bool found = memmem(data, len, needle, strlen(needle)) != NULL;
            free(data);
            if (found)
                return true;
        }
        if (reel_test_now_ms() > deadline)
            return false;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The "read-only while reeld runs on it": every reading
 * subcommand works on the data directory of a live reeld and sees what it
 * wrote, dump --follow tails it, the writing ones refuse with a message,
 * and none of them changes a byte of the log. */
Test(tools, read_only_beside_a_running_reeld)
{
    int port = 0;
    char into[PATH_MAX + 16], out[PATH_MAX + 16], fout[PATH_MAX + 16], ferr[PATH_MAX + 16];
    char nd[PATH_MAX + 16], id[32];
    pid_t pid = reel_test_reeld_start(tmp, data_dir, NULL, &port);
    reel_test_resp_t a = reel_test_http(port, "POST", "/v1/users", "{\"handle\":\"dave\"}", NULL);
    cr_assert_eq(a.status, 201, "%s", a.body);
    snprintf(id, sizeof(id), "%lld", reel_test_jint(&a, "user_id"));
    reel_test_resp_free(&a);
    uint64_t before = log_digest();

    run_t r = run_reel("dump", "--data", data_dir, "--json", "--types", "user.created", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"handle\":\"dave\"") != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    r = run_reel("stat", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *j = parse(r.out);
    cr_assert_eq(get_int(j, "events", NULL), 14);
    json_decref(j);
    run_free(&r);
    r = run_reel("inspect", "--data", data_dir, "user", id, "--history", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"handle\":\"dave\"") != NULL, "%s", r.out);
    run_free(&r);
    snprintf(out, sizeof(out), "%s/live-export", tmp);
    r = run_reel("export", "--data", data_dir, "--out", out, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "next --from 14") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("views-hash", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "applied=14") != NULL, "%s", r.out);
    run_free(&r);
    snprintf(into, sizeof(into), "%s/live-past", tmp);
    r = run_reel("replay", "--data", data_dir, "--to", "13", "--into", into, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);

    /* The writers refuse: reeld holds the log. */
    snprintf(nd, sizeof(nd), "%s/one.ndjson", tmp);
    const char *line = "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"eve\"},\"at\":9999999999999}\n";
    cr_assert_eq(reel_test_write_file(nd, line, strlen(line)), 0);
    const char *writers[][6] = {
        {"rebuild", "--data", data_dir, NULL},
        {"import", "--data", data_dir, "--ndjson", nd, NULL},
        {"loadgen", "--data", data_dir, "--users", "10", "--events", },
    };
    for (size_t i = 0; i < 3; i++) {
        r = run_reel(writers[i][0], writers[i][1], writers[i][2], writers[i][3], writers[i][4],
                     writers[i][5], i == 2 ? "100" : NULL, NULL);
        cr_assert_eq(r.status, 2, "%s: %s", writers[i][0], r.err);
        cr_assert(strstr(r.err, "reeld") != NULL || strstr(r.err, "another process") != NULL,
                  "%s: %s", writers[i][0], r.err);
        run_free(&r);
    }
    cr_assert_eq(log_digest(), before, "a reel subcommand changed the log");

    /* dump --follow tails the live log: a write through HTTP shows up. */
    snprintf(fout, sizeof(fout), "%s/follow.out", tmp);
    snprintf(ferr, sizeof(ferr), "%s/follow.err", tmp);
    const char *args[] = {"dump", "--data", data_dir, "--follow", "--json", "--types",
                          "user.created", NULL};
    pid_t tail = reel_test_reel_spawn(args, fout, ferr);
    cr_assert(file_has(fout, "\"handle\":\"dave\"", 20), "the tail shows what was there");
    a = reel_test_http(port, "POST", "/v1/users", "{\"handle\":\"frank\"}", NULL);
    cr_assert_eq(a.status, 201, "%s", a.body);
    reel_test_resp_free(&a);
    cr_assert(file_has(fout, "\"handle\":\"frank\"", 20), "the tail shows the new user");
    int ws;
    cr_assert_eq(kill(tail, SIGTERM), 0);
    cr_assert_eq(waitpid(tail, &ws, 0), tail);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "dump --follow on SIGTERM: %d", ws);
    cr_assert_eq(reel_test_reeld_stop(pid, SIGTERM), 0);
}

/* Daily increments: export everything, let the log grow, export again from
 * the offset the first run printed. The second run holds exactly the new
 * events, in new files beside the first ones, and the two together are a
 * full export of the grown log, line for line. A --from past the end is
 * refused before --out is even made. */
Test(tools, export_increments_resume_from_the_printed_offset)
{
    char day1[PATH_MAX + 16], full[PATH_MAX + 16], err[256], path[PATH_MAX + 64];
    snprintf(day1, sizeof(day1), "%s/inc", tmp);
    snprintf(full, sizeof(full), "%s/full", tmp);
    run_t r = run_reel("export", "--data", data_dir, "--out", day1, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *next = strstr(r.err, "next --from ");
    cr_assert_not_null(next, "%s", r.err);
    char from[32];
    snprintf(from, sizeof(from), "%llu", strtoull(next + 12, NULL, 10));
    cr_assert_str_eq(from, "13");
    run_free(&r);

    reel_engine_t *e = NULL;
    reel_engine_options_t o = {0};
    cr_assert_eq(reel_engine_open(data_dir, &o, &e, err, sizeof(err)), 0, "%s", err);
    must(e, REEL_CMD_LIKE, (reel_event_t){.user = alice, .post = remix}, 200);
    must(e, REEL_CMD_LIKE, (reel_event_t){.user = carol, .post = remix}, 200);
    must(e, REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("dora")}, 201);
    cr_assert_eq(reel_engine_close(e), 0);

    r = run_reel("export", "--data", data_dir, "--out", day1, "--from", from, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "3 events of offsets [13, 16) into 2 files") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "next --from 16") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", data_dir, "--out", full, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    const char *types[] = {"like.created", "user.created"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s.%020d.jsonl", day1, types[i], 0);
        char *a = slurp(path);
        snprintf(path, sizeof(path), "%s/%s.%020d.jsonl", day1, types[i], 13);
        char *b = slurp(path);
        snprintf(path, sizeof(path), "%s/%s.%020d.jsonl", full, types[i], 0);
        char *all = slurp(path);
        cr_assert_gt(strlen(b), 0);
        cr_assert_eq(strlen(a) + strlen(b), strlen(all), "%s", types[i]);
        cr_assert(strncmp(all, a, strlen(a)) == 0 && strcmp(all + strlen(a), b) == 0,
                  "%s: the increments are not the full export", types[i]);
        free(a);
        free(b);
        free(all);
    }
    /* Past the end: refused, and no --out made. */
    char never[PATH_MAX + 16];
    struct stat st;
    snprintf(never, sizeof(never), "%s/never", tmp);
    r = run_reel("export", "--data", data_dir, "--out", never, "--from", "17", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "past the end of the log (16)") != NULL, "%s", r.err);
    cr_assert_neq(stat(never, &st), 0, "made %s", never);
    run_free(&r);
}
