/*
 * datadir.c: paths inside a data directory, and its lock (datadir.h).
 */
#include "engine/datadir.h"
#include "engine/common.h"
#include "engine/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int join(const char *dir, const char *sub, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", dir, sub);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int reel_data_log_path(const char *data_dir, char *buf, size_t len)
{
    return join(data_dir, REEL_DATA_LOG_SUBDIR, buf, len);
}

int reel_data_views_path(const char *data_dir, char *buf, size_t len)
{
    return join(data_dir, REEL_DATA_VIEWS_SUBDIR, buf, len);
}

int reel_data_views_remove(const char *views_dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < REEL_ARRAY_LEN(files); i++) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/%s", views_dir, files[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            return REEL_ERR(errno);
    }
    return 0;
}

int reel_data_lock(const char *data_dir)
{
    char log_dir[PATH_MAX];
    int rc = reel_data_log_path(data_dir, log_dir, sizeof(log_dir));
    if (rc < 0)
        return rc;
    if (mkdir(log_dir, 0755) < 0 && errno != EEXIST)
        return REEL_ERR(errno);
    return reel_log_lock(log_dir);
}

void reel_data_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the last fd releases the flock */
}
