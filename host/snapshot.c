#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
/* snapshot.c - the frozen set of script files one generation is built from.
 *
 * Built by the master with plain blocking I/O (the master serves no
 * requests) into a sealed memfd, read by workers on the libuv thread pool.
 * Files are listed in sorted order so every worker loads routes in the same
 * order. */
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char **names;
    int n, cap;
} list_t;

static int snapshot__list_add(list_t *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->names, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->names = p;
        l->cap = cap;
    }
    l->names[l->n++] = strdup(s);
    return 0;
}

static int snapshot__cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Collects rel paths of *.lua below root/rel, depth-first. */
static int snapshot__walk(const char *root, const char *rel, list_t *out, int depth) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096], full[8192];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) < 0) continue;
        if (S_ISDIR(st.st_mode) && depth < 16) rc = snapshot__walk(root, sub, out, depth + 1);
        else if (S_ISREG(st.st_mode) && strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".lua") == 0)
            rc = snapshot__list_add(out, sub);
    }
    closedir(d);
    return rc;
}

/* Reads a whole file into a malloc'd buffer. 0, or -1 with err. */
static int snapshot__read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    size_t cap = 65536, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return snprintf(err, errlen, "%s: read failed", path), -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int snapshot__add_tree(FILE *f, const char *root, const char *prefix, char *err, size_t errlen) {
    list_t l = {0};
    if (snapshot__walk(root, "", &l, 0) < 0) {
        snprintf(err, errlen, "%s: cannot read folder: %s", root, strerror(errno));
        return -1;
    }
    qsort(l.names, (size_t)l.n, sizeof *l.names, snapshot__cmp);
    int rc = 0;
    for (int i = 0; i < l.n; i++) {
        char full[8192], *data = NULL;
        size_t len = 0;
        snprintf(full, sizeof full, "%s/%s", root, l.names[i]);
        if (rc == 0 && (rc = snapshot__read_file(full, &data, &len, err, errlen)) == 0) {
            fprintf(f, "%s%s\n%zu\n", prefix, l.names[i], len);
            fwrite(data, 1, len, f);
            fputc('\n', f);
        }
        free(data);
        free(l.names[i]);
    }
    free(l.names);
    return rc;
}

int snapshot_create(const char *scripts, const char *fixtures, const char *config, char *err, size_t errlen) {
    int fd = memfd_create("cchost-generation", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return snprintf(err, errlen, "memfd_create: %s", strerror(errno)), -1;
    int wfd = dup(fd);
    FILE *f = wfd < 0 ? NULL : fdopen(wfd, "wb");
    if (!f) {
        snprintf(err, errlen, "snapshot: %s", strerror(errno));
        if (wfd >= 0) close(wfd);
        close(fd);
        return -1;
    }
    int rc = snapshot__add_tree(f, scripts, "", err, errlen);
    if (rc == 0 && fixtures && *fixtures) rc = snapshot__add_tree(f, fixtures, "fixtures/", err, errlen);
    if (rc == 0 && config && *config) rc = snapshot__add_tree(f, config, "config/", err, errlen);
    if (fclose(f) != 0 && rc == 0) rc = -1, snprintf(err, errlen, "snapshot: write failed");
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        rc = -1, snprintf(err, errlen, "snapshot: cannot seal: %s", strerror(errno));
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int snapshot_load(int fd, char **out, size_t *len, char *err, size_t errlen) {
    struct stat st;
    if (fstat(fd, &st) < 0) return snprintf(err, errlen, "snapshot: %s", strerror(errno)), -1;
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n ? n : 1);
    if (!buf) return snprintf(err, errlen, "snapshot: out of memory"), -1;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, errlen, "snapshot: read failed: %s", r < 0 ? strerror(errno) : "short file");
            free(buf);
            return -1;
        }
        got += (size_t)r;
    }
    *out = buf;
    *len = n;
    return 0;
}

int snapshot_next(const char *buf, size_t len, size_t *pos, const char **name, size_t *name_len, const char **data,
                  size_t *data_len) {
    size_t p = *pos;
    if (p >= len) return 0;
    const char *nl = memchr(buf + p, '\n', len - p);
    if (!nl) return -1;
    *name = buf + p;
    *name_len = (size_t)(nl - (buf + p));
    p = (size_t)(nl - buf) + 1;
    char *end;
    unsigned long long n = strtoull(buf + p, &end, 10);
    if (end == buf + p || (size_t)(end - buf) >= len || *end != '\n') return -1;
    p = (size_t)(end - buf) + 1;
    if (n > len - p || p + n >= len || buf[p + n] != '\n') return -1;
    *data = buf + p;
    *data_len = (size_t)n;
    *pos = p + (size_t)n + 1;
    return 1;
}
