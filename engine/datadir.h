/*
 * datadir.h: the layout of a data directory (reeld --data, reel --data;
 * default ./data) and its lock.
 *
 *   DIR/log/     the event log (engine/log.h; FORMAT.md)
 *   DIR/views/   the materialised views (engine/views.h), always a
 *                function of the log: rebuildable from it at any time
 *
 * The log's writer holds an exclusive flock on DIR/log/LOCK. Tools that
 * must not run beside a writer (reel rebuild) take the same lock.
 */
#ifndef REEL_DATADIR_H
#define REEL_DATADIR_H

#include <stddef.h>

#define REEL_DATA_DIR_DEFAULT "./data"
#define REEL_DATA_LOG_SUBDIR "log"
#define REEL_DATA_VIEWS_SUBDIR "views"

/* DATA_DIR/log and DATA_DIR/views into buf (len bytes); 0 or -ENAMETOOLONG. */
int reel_data_log_path(const char *data_dir, char *buf, size_t len);
int reel_data_views_path(const char *data_dir, char *buf, size_t len);

/* Removes the views' files (data.mdb, lock.mdb) from views_dir, keeping
 * the directory: the views are a function of the log, rebuilt from it.
 * Returns 0 (also when they were not there) or -errno. */
int reel_data_views_remove(const char *views_dir);

/* Takes the log's writer lock (DATA_DIR/log/LOCK, created with DATA_DIR/log
 * when missing) without waiting. Returns an fd to pass to reel_data_unlock,
 * REEL_ELOCKED while another process writes the log, or -errno. */
int reel_data_lock(const char *data_dir);
void reel_data_unlock(int fd);

#endif /* REEL_DATADIR_H */
