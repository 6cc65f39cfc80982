/*
 * test_server_faults.c: what an HTTP client sees when reeld's storage
 * fails. The engine runs on the fault-injecting backend (engine/io_fault.h)
 * and reeld's API serves it on a libuv loop in a thread of this process
 * (reeld itself has no fault hook); a real client talks to it over
 * loopback. Two kinds of failure (engine/reel.h, reel_engine_status):
 *   - the file system refuses writes (read-only, full): writes answer 503
 *     with the reason, /healthz says read_only and that writes resume,
 *     reads go on, and once it takes writes again they go through;
 *   - a failed write or sync: writes answer 503 from then on, /healthz
 *     says they stopped until restart, reads go on.
 * Nothing a refused write sent is in the log or the views.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "engine/common.h"
#include "engine/io_fault.h"
#include "engine/reel.h"
#include "server/api.h"
#include "tests/harness.h"

static char dir[PATH_MAX], aux[PATH_MAX];

static struct {
    reel_io_t *inner;
    reel_fault_io_t *fault;
    reel_engine_t *e;
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    reel_api_t *api;
    int port;
} g;

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&g.loop, UV_RUN_DEFAULT); /* until the API and the stop handle closed */
    return NULL;
}

static void stopped(void *data)
{
    (void)data;
    uv_close((uv_handle_t *)&g.stop, NULL);
}

static void stop_cb(uv_async_t *h)
{
    (void)h;
    reel_api_shutdown(g.api, stopped, NULL);
}

static void setup(void)
{
    char err[256];
    reel_test_tmpdir(dir, sizeof(dir), "srvfault");
    reel_test_tmpdir(aux, sizeof(aux), "srvfault-aux");
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &g.inner), 0);
    cr_assert_eq(reel_io_fault_create(g.inner, &g.fault), 0);
    reel_engine_options_t o = {.log = {.segment_size = 256 << 10,
                                       .io = reel_io_fault_io(g.fault)}};
    cr_assert_eq(reel_engine_open(dir, &o, &g.e, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(uv_loop_init(&g.loop), 0);
    cr_assert_eq(uv_async_init(&g.loop, &g.stop, stop_cb), 0);
    reel_api_config_t cfg = {.host = "127.0.0.1", .invites_per_user = 4,
                             .generations_per_day = 30};
    signal(SIGPIPE, SIG_IGN); /* as reeld: a client gone mid-answer is an error code */
    cr_assert_eq(reel_api_start(&g.loop, g.e, &cfg, &g.api, &g.port, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(pthread_create(&g.thread, NULL, loop_main, NULL), 0);
}

static void teardown(void)
{
    uv_async_send(&g.stop);
    pthread_join(g.thread, NULL);
    cr_assert_eq(uv_loop_close(&g.loop), 0, "every handle closed");
    reel_api_free(g.api);
    reel_engine_close(g.e);
    reel_io_fault_destroy(g.fault);
    reel_io_destroy(g.inner);
    reel_test_rmtree(dir);
    reel_test_rmtree(aux);
}

TestSuite(server_faults, .init = setup, .fini = teardown, .timeout = 120);

/* A request; its answer's status asserted. */
static reel_test_resp_t call(const char *method, const char *path, const char *body, int status)
{
    reel_test_resp_t r = reel_test_http(g.port, method, path, body, NULL);
    cr_assert_eq(r.status, status, "%s %s: want %d: %s", method, path, status, r.raw);
    return r;
}

static void expect_status(const char *method, const char *path, int status)
{
    reel_test_resp_t r = call(method, path, NULL, status);
    reel_test_resp_free(&r);
}

/* /healthz: its state, and that its reason (when read_only) has want. */
static void expect_health(const char *state, const char *want)
{
    reel_test_resp_t r = call("GET", "/healthz", NULL, 200);
    char s[64];
    snprintf(s, sizeof(s), "\"state\":\"%s\"", state);
    cr_assert(strstr(r.body, s) != NULL, "healthz: %s", r.body);
    if (want != NULL)
        cr_assert(strstr(r.body, want) != NULL, "healthz reason: %s", r.body);
    else
        cr_assert(strstr(r.body, "\"reason\"") == NULL, "healthz: %s", r.body);
    reel_test_resp_free(&r);
}

static void create_user(const char *handle, int status)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"handle\":\"%s\"}", handle);
    reel_test_resp_t r = call("POST", "/v1/users", body, status);
    if (status == 503)
        cr_assert_str_eq(reel_test_jerr(&r, "code"), "unavailable");
    reel_test_resp_free(&r);
}

Test(server_faults, a_refusing_file_system_answers_503_until_it_takes_writes)
{
    create_user("before", 201);
    expect_health("writable", NULL);
    uint64_t end = reel_log_end(reel_engine_log(g.e));
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_ANY_WRITE, .action = REEL_FAULT_FAIL, .err = EROFS};
    cr_assert_geq(reel_io_fault_set(g.fault, &r), 0);

    create_user("refused", 503);
    expect_health("read_only", "writes resume once the file system takes them");
    expect_status("GET", "/v1/users/1", 200); /* reads go on */
    expect_status("GET", "/v1/handles/refused", 404);
    cr_assert_eq(reel_log_end(reel_engine_log(g.e)), end, "a refused write appends nothing");

    reel_io_fault_clear(g.fault); /* the file system takes writes again */
    create_user("after", 201);
    expect_health("writable", NULL);
    expect_status("GET", "/v1/handles/after", 200);
    expect_status("GET", "/v1/handles/refused", 404);
    reel_test_views_equal_replay(g.e, aux);
}

Test(server_faults, a_failed_sync_stops_writes_and_reads_go_on)
{
    create_user("before", 201);
    uint64_t end = reel_log_end(reel_engine_log(g.e));
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_ANY_SYNC, .action = REEL_FAULT_FAIL, .err = EIO};
    cr_assert_geq(reel_io_fault_set(g.fault, &r), 0);

    create_user("lost", 503);
    expect_health("read_only", "writes stopped until restart");
    reel_io_fault_clear(g.fault); /* sticky: a later sync that works changes nothing */
    create_user("later", 503);
    expect_health("read_only", "writes stopped until restart");
    expect_status("GET", "/v1/users/1", 200);
    expect_status("GET", "/v1/handles/lost", 404);
    cr_assert_eq(reel_log_end(reel_engine_log(g.e)), end, "nothing after the failure is durable");
}
