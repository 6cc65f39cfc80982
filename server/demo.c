/*
 * demo.c: the demo world (demo.h). Ids are the engine's, which on an
 * empty log count from 1, so the requests below can name them.
 */
#include "server/demo.h"
#include "engine/common.h"

#include <string.h>

#include "server/cmdjson.h"
#include "server/route.h"

static const char *const demo_requests[][3] = {
    {"POST", "/v1/users", "{\"handle\":\"ava\",\"display_name\":\"Ava Chen\"}"},
    {"POST", "/v1/users", "{\"handle\":\"ben\",\"display_name\":\"Ben Okafor\"}"},
    {"POST", "/v1/users", "{\"handle\":\"chloe\",\"display_name\":\"Chloe Martin\"}"},
    {"POST", "/v1/users", "{\"handle\":\"dev\",\"display_name\":\"Dev Patel\"}"},
    {"POST", "/v1/users", "{\"handle\":\"emma\",\"display_name\":\"Emma Svensson\"}"},
    {"PUT", "/v1/users/1/following/2", ""},
    {"PUT", "/v1/users/2/following/1", ""},
    {"PUT", "/v1/users/1/following/3", ""},
    {"PUT", "/v1/users/3/following/1", ""},
    {"PUT", "/v1/users/4/following/1", ""},
    {"PUT", "/v1/users/5/following/1", ""},
    {"PUT", "/v1/users/5/following/3", ""},
    {"PUT", "/v1/users/1/cameo", "{\"asset\":\"s3://demo/cameos/ava.bin\"}"},
    {"PUT", "/v1/users/1/cameo/policy", "{\"policy\":\"everyone\"}"},
    {"PUT", "/v1/users/2/cameo", "{\"asset\":\"s3://demo/cameos/ben.bin\"}"},
    {"PUT", "/v1/users/2/cameo/policy", "{\"policy\":\"mutuals\"}"},
    {"POST", "/v1/posts", "{\"author\":2,\"video_uri\":\"s3://demo/v/1.mp4\",\"prompt\":\"a "
                          "chef cat flipping pancakes\",\"tags\":[\"cooking\",\"cats\"]}"},
    {"POST", "/v1/posts", "{\"author\":3,\"video_uri\":\"s3://demo/v/2.mp4\",\"prompt\":\"sunrise "
                          "over the Alps in timelapse\",\"tags\":[\"travel\",\"mountains\"]}"},
    {"POST", "/v1/posts", "{\"author\":1,\"video_uri\":\"s3://demo/v/3.mp4\",\"prompt\":\"ava "
                          "walking on the moon\",\"tags\":[\"space\"],\"cameos\":[1]}"},
    {"POST", "/v1/posts", "{\"author\":3,\"video_uri\":\"s3://demo/v/4.mp4\",\"prompt\":\"ava "
                          "and chloe play jazz\",\"tags\":[\"music\",\"jazz\"],\"cameos\":[1]}"},
    {"POST", "/v1/posts", "{\"author\":1,\"video_uri\":\"s3://demo/v/5.mp4\",\"prompt\":\"ben "
                          "surfing a wave of noodles\",\"tags\":[\"cooking\",\"surf\"],"
                          "\"cameos\":[2]}"},
    {"POST", "/v1/posts", "{\"author\":4,\"video_uri\":\"s3://demo/v/6.mp4\",\"prompt\":\"a "
                          "rocket made of origami\",\"tags\":[\"space\",\"paper\"]}"},
    {"POST", "/v1/posts", "{\"author\":5,\"video_uri\":\"s3://demo/v/7.mp4\",\"prompt\":\"the "
                          "moon walk, now with cats\",\"tags\":[\"space\",\"cats\"],"
                          "\"remix_of\":3}"},
    {"PUT", "/v1/posts/1/likes/1", ""},
    {"PUT", "/v1/posts/1/likes/5", ""},
    {"PUT", "/v1/posts/3/likes/2", ""},
    {"PUT", "/v1/posts/3/likes/4", ""},
    {"PUT", "/v1/posts/3/likes/5", ""},
    {"PUT", "/v1/posts/4/likes/1", ""},
    {"POST", "/v1/posts/3/comments", "{\"author\":2,\"text\":\"one small step for ava\"}"},
    {"POST", "/v1/posts/3/comments", "{\"author\":1,\"text\":\"thanks ben!\",\"reply_to\":1}"},
    {"POST", "/v1/views", "{\"user\":4,\"post\":1,\"watch_ms\":5200,\"completed\":true}"},
    {"POST", "/v1/generations", "{\"user\":4,\"prompt\":\"a lighthouse that sings\","
                                "\"tags\":[\"music\"]}"},
};

static int demo_one(reel_engine_t *e, const char *const req[3], FILE *out)
{
    reel_route_match_t m;
    reel_api_err_t err;
    reel_cmdjson_t c;
    reel_cmd_result_t res;
    if (reel_route_match(req[0], req[1], strlen(req[1]), &m, &err) != 0 ||
        reel_cmdjson_parse(&m, req[2], strlen(req[2]), false, &c, &err) != 0) {
        fprintf(out, "demo: %s %s: %s\n", req[0], req[1], err.message);
        return REEL_EUSAGE;
    }
    c.cmd.admin = true;
    int rc = reel_engine_run(e, &c.cmd, &res);
    reel_cmdjson_free(&c);
    if (rc != 0 || res.error != NULL) {
        fprintf(out, "demo: %s %s: %s\n", req[0], req[1], rc ? reel_strerror(rc) : res.message);
        return rc ? rc : REEL_EUSAGE;
    }
    return 0;
}

int reel_demo_load(reel_engine_t *e, FILE *out)
{
    if (reel_log_end(reel_engine_log(e)) != 0)
        return 1;
    for (size_t i = 0; i < REEL_ARRAY_LEN(demo_requests); i++) {
        int rc = demo_one(e, demo_requests[i], out);
        if (rc != 0)
            return rc;
    }
    fprintf(out, "demo: loaded %zu requests (5 users, follows, cameos, 7 posts, likes, comments, "
            "a generation)\n", REEL_ARRAY_LEN(demo_requests));
    return 0;
}
