/*
 * demo.h: the demo world `make run` loads into an empty data directory
 * (reeld --demo): users, follows, cameos, posts on several topics with
 * tags, likes, comments and a remix, each sent through the API's request
 * parsing (cmdjson.h) as a client would send it.
 */
#ifndef REEL_SERVER_DEMO_H
#define REEL_SERVER_DEMO_H

#include <stdio.h>

#include "engine/reel.h"

/* Loads the demo world into e when its log is empty (else does nothing:
 * returns 1). Returns 0, 1, or a negative error with a message on out. */
int reel_demo_load(reel_engine_t *e, FILE *out);

#endif /* REEL_SERVER_DEMO_H */
