/*
 * api_metrics.c: GET /metrics in the Prometheus text format: requests by
 * route and status, latency histograms by route, the log (end offset,
 * group commits, fsync time), the views' lag behind the log, connections,
 * and the queue depths: commands in flight, parked claims, streams,
 * requests waiting in connections' pipelines, answer bytes queued; the
 * engine's phases and each group commit's durable-write latency
 * (histogram); the feed index's size (posts, profiles, bytes), so that
 * memory growth can be told from a leak (reel bench soak).
 */
#include "server/api_int.h"
#include "engine/common.h"
#include "index/index.h"
#include "server/problems.h"

#include <string.h>

static const int status_codes[API_STATUS_SLOTS] = {200, 201, 202, 400, 401, 403, 404, 405,
                                                   409, 413, 429, 431, 503, 505, 500, 0};
static const char *const le_ms[API_LAT_BUCKETS] = {"0.001", "0.002", "0.005", "0.01",
                                                   "0.025", "0.05",  "0.1",   "0.25",
                                                   "0.5",   "1",     "2.5",   "10"};

static void requests(const reel_api_t *a, reel_jbuf_t *b)
{
    reel_jbuf_adds(b, "# HELP reeld_requests_total Requests answered, by route and status.\n"
                      "# TYPE reeld_requests_total counter\n");
    for (int r = 0; r < REEL_ROUTE_COUNT; r++) {
        for (int s = 0; s < API_STATUS_SLOTS; s++) {
            if (a->m.requests[r][s] == 0)
                continue;
            reel_jbuf_addf(b, "reeld_requests_total{route=\"%s\",status=\"%s%d\"} %llu\n",
                           reel_route_name((reel_route_t)r), status_codes[s] ? "" : "other",
                           status_codes[s] ? status_codes[s] : 0,
                           (unsigned long long)a->m.requests[r][s]);
        }
    }
}

static void latency(const reel_api_t *a, reel_jbuf_t *b)
{
    reel_jbuf_adds(b, "# HELP reeld_request_seconds Time from a request's first byte to its "
                      "answer, by route.\n# TYPE reeld_request_seconds histogram\n");
    for (int r = 0; r < REEL_ROUTE_COUNT; r++) {
        uint64_t cum = 0;
        const char *name = reel_route_name((reel_route_t)r);
        for (int i = 0; i <= API_LAT_BUCKETS; i++)
            cum += a->m.latency[r][i];
        if (cum == 0)
            continue;
        cum = 0;
        for (int i = 0; i < API_LAT_BUCKETS; i++) {
            cum += a->m.latency[r][i];
            reel_jbuf_addf(b, "reeld_request_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n", name,
                           le_ms[i], (unsigned long long)cum);
        }
        cum += a->m.latency[r][API_LAT_BUCKETS];
        reel_jbuf_addf(b, "reeld_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name,
                       (unsigned long long)cum);
        reel_jbuf_addf(b, "reeld_request_seconds_sum{route=\"%s\"} %.6f\n", name,
                       (double)a->m.latency_sum_us[r] / 1e6);
        reel_jbuf_addf(b, "reeld_request_seconds_count{route=\"%s\"} %llu\n", name,
                       (unsigned long long)cum);
    }
}

static void gauge(reel_jbuf_t *b, const char *name, const char *help, const char *type,
                  uint64_t v)
{
    reel_jbuf_addf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                   (unsigned long long)v);
}

/* A Prometheus histogram's HELP, TYPE and cumulative buckets from n
 * counts (the last above every bound): bound i is labelled bounds[i] /
 * scale. The caller adds _sum and _count. */
static void histogram(reel_jbuf_t *b, const char *name, const char *help, const uint64_t *bounds,
                      double scale, const uint64_t *counts, uint32_t n)
{
    uint64_t cum = 0;
    reel_jbuf_addf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (uint32_t i = 0; i < n; i++) {
        cum += counts[i];
        if (i + 1 < n)
            reel_jbuf_addf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[i] / scale,
                           (unsigned long long)cum);
        else
            reel_jbuf_addf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
}

static void engine_metrics(const reel_api_t *a, reel_jbuf_t *b)
{
    reel_log_t *log = reel_engine_log(a->engine);
    reel_log_stats_t st;
    uint64_t end = reel_log_end(log);
    uint64_t applied = reel_views_applied(reel_engine_views(a->engine));
    reel_log_stats(log, &st);
    gauge(b, "reeld_log_end_offset", "Offsets below this are durable.", "gauge", end);
    gauge(b, "reeld_views_lag_events", "Durable events the views have not applied.", "gauge",
          end > applied ? end - applied : 0);
    gauge(b, "reeld_log_group_commits_total", "Group commits (one durable write each).",
          "counter", st.batches);
    gauge(b, "reeld_log_records_total", "Records appended since start.", "counter", st.records);
    gauge(b, "reeld_log_bytes_written_total", "Bytes written to the log since start.", "counter",
          st.bytes_written);
    reel_jbuf_addf(b, "# HELP reeld_log_fsync_seconds_total Time spent making batches durable.\n"
                      "# TYPE reeld_log_fsync_seconds_total counter\n"
                      "reeld_log_fsync_seconds_total %.6f\n",
                   (double)st.fsync_ns_total / 1e9);
    reel_engine_stats_t es;
    reel_engine_stats(a->engine, &es);
    gauge(b, "reeld_engine_batches_total", "Command batches run by the engine's writer.", "counter",
          es.batches);
    gauge(b, "reeld_engine_commands_total", "Commands judged.", "counter", es.commands);
    gauge(b, "reeld_engine_events_total", "Events appended by commands.", "counter", es.events);
    gauge(b, "reeld_engine_queue_depth", "Commands waiting for the engine's writer.", "gauge",
          es.queued);
    reel_jbuf_addf(b, "# HELP reeld_engine_phase_seconds_total Where batches spend their time.\n"
                      "# TYPE reeld_engine_phase_seconds_total counter\n"
                      "reeld_engine_phase_seconds_total{phase=\"judge\"} %.6f\n"
                      "reeld_engine_phase_seconds_total{phase=\"durable_wait\"} %.6f\n"
                      "reeld_engine_phase_seconds_total{phase=\"views_commit\"} %.6f\n",
                   (double)es.judge_ns / 1e9, (double)es.durable_wait_ns / 1e9,
                   (double)es.views_commit_ns / 1e9);
    static const uint64_t bounds_us[] = REEL_LOG_SYNC_BUCKETS_US;
    static const uint64_t bounds_rec[] = REEL_LOG_BATCH_BUCKETS_RECORDS;
    histogram(b, "reeld_log_fsync_seconds", "Latency of each group commit's durable write.",
              bounds_us, 1e6, st.sync_hist, REEL_LOG_SYNC_BUCKETS);
    reel_jbuf_addf(b, "reeld_log_fsync_seconds_sum %.6f\nreeld_log_fsync_seconds_count %llu\n",
                   (double)st.fsync_ns_total / 1e9, (unsigned long long)st.batches);
    histogram(b, "reeld_log_group_commit_records", "Records (events) per group commit.",
              bounds_rec, 1, st.batch_hist, REEL_LOG_BATCH_BUCKETS);
    reel_jbuf_addf(b, "reeld_log_group_commit_records_sum %llu\n"
                      "reeld_log_group_commit_records_count %llu\n",
                   (unsigned long long)st.records, (unsigned long long)st.batches);
    reel_jbuf_addf(b, "# HELP reeld_log_group_commit_records_avg Records per group commit.\n"
                      "# TYPE reeld_log_group_commit_records_avg gauge\n"
                      "reeld_log_group_commit_records_avg %.3f\n",
                   st.batches ? (double)st.records / (double)st.batches : 0.0);
}

void reel__api_metrics(reel_api_t *a, reel_http_req_t *req)
{
    reel_http_stats_t hs;
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_http_server_stats(a->http, &hs);
    requests(a, &b);
    latency(a, &b);
    engine_metrics(a, &b);
    if (a->cfg.index != NULL) { /* what the feed index holds in memory */
        reel_index_stats_t is;
        reel_index_stats(a->cfg.index, &is);
        gauge(&b, "reeld_index_posts", "Posts in the feed index.", "gauge", is.posts);
        gauge(&b, "reeld_index_users", "User profiles in the feed index.", "gauge", is.users);
        gauge(&b, "reeld_index_bytes", "Memory of the feed index, profiles and bitmaps "
              "included.", "gauge", is.bytes_total);
        gauge(&b, "reeld_index_dropped_total", "Events the feed index could not fold in.",
              "counter", is.dropped);
    }
    gauge(&b, "reeld_connections_open", "Open client connections.", "gauge", hs.connections_open);
    gauge(&b, "reeld_connections_total", "Connections accepted.", "counter",
          hs.connections_total);
    gauge(&b, "reeld_connections_refused_total", "Connections refused over the limit.",
          "counter", hs.connections_refused);
    gauge(&b, "reeld_client_timeouts_total", "Connections cut for slow or idle clients.",
          "counter", hs.timeouts);
    gauge(&b, "reeld_bad_requests_total", "Requests refused by the transport (400, 413, 431, "
          "505).", "counter", hs.bad_requests);
    gauge(&b, "reeld_commands_inflight", "Commands submitted to the engine, not yet answered.",
          "gauge", a->inflight);
    gauge(&b, "reeld_commands_refused_total", "Commands the engine queue refused (503).",
          "counter", a->m.cmds_failed_submit);
    gauge(&b, "reeld_claims_parked", "Render claims waiting in a long poll.", "gauge",
          a->nparked);
    gauge(&b, "reeld_streams_open", "Open /v1/log/stream consumers.", "gauge", a->nstreams);
    gauge(&b, "reeld_http_requests_pending", "Requests parsed and not yet answered or written "
          "(all connections' pipelines).", "gauge", hs.requests_pending);
    gauge(&b, "reeld_http_output_queued_bytes", "Answer bytes queued for clients that have not "
          "taken them.", "gauge", hs.output_queued_bytes);
    gauge(&b, "reeld_problems_slow_clients_total", "Clients cut: header, body or idle timeout, "
          "or an SSE consumer that fell behind.", "counter",
          reel_problem_total(REEL_PROBLEM_SLOW_CLIENT));
    reel__api_reply(a, req, REEL_ROUTE_METRICS, 200, "text/plain; version=0.0.4", NULL, &b);
    reel_jbuf_free(&b);
}
