/* static.c - static files from configured folders, served by C.
 *
 * Where it hooks in: the worker's request handler (worker.c) asks
 * static_handle() before vm_handle_request(). A request outside every mount
 * costs one prefix comparison per mount and goes on to the router untouched;
 * a request under a mount never reaches the router or Lua (no coroutine, no
 * generation), so the docs pages keep working whatever the scripts do. The
 * HTTP layer stays protocol-only and the router route-only.
 *
 * Safety: anything outside the folder is a 404, never a 5xx.
 *   - On the loop, the path after the prefix is refused when longer than
 *     STATIC__MAX_PATH, when it holds an encoded slash or backslash (%2f,
 *     %5c), a raw backslash, a bad or NUL escape, an empty segment, a
 *     segment starting with '.' (so "." and ".." whether raw or encoded as
 *     %2e%2e, and dotfiles), a segment longer than NAME_MAX or a control
 *     byte.
 *   - On the thread pool, the folder and the file are resolved with
 *     realpath() and the file must lie under the folder: symlinks that stay
 *     inside are followed, those that lead out are refused. It must be a
 *     regular file of at most STATIC__MAX_FILE bytes; a folder answers its
 *     index.html.
 * Reads never block the loop: realpath, open, fstat and read run on the
 * libuv thread pool, one job per request. Files up to STATIC__CACHE_FILE
 * bytes stay in memory (STATIC__CACHE_BYTES in all, the least recently used
 * leaving first) with the device, inode, size and mtime they were read
 * with; every request still stats the file on the pool and rereads it when
 * any of these changed, so an edit on disk shows on the next request. A
 * version of a file is an immutable blob with a reference count that only
 * the loop touches, so jobs need no lock.
 * Validators: the ETag is a SHA-256 prefix of the content (the same on every
 * host behind a load balancer, unlike an mtime); If-None-Match (a list, W/
 * ignored, or *) gives 304. Cache-Control: HTML "no-cache" (revalidated on
 * every load: pages name their assets), files of an immutable mount
 * "public, max-age=31536000, immutable" (their URLs carry the version,
 * tools/docs/package.json), anything else "no-cache".
 * Security headers: every answer carries X-Content-Type-Options: nosniff;
 * files of a ";csp" mount (an application such as the browser console, as
 * opposed to pages that embed third-party bundles) also carry
 * STATIC__CSP_HEADERS: a Content-Security-Policy that admits scripts,
 * styles, images, fonts and connections (also the WebSocket) of this origin
 * only, so no inline script or style, no plugin, no <base>, and no framing
 * (frame-ancestors 'none', which a <meta> policy cannot express), plus the
 * legacy X-Frame-Options and a Referrer-Policy. */
#include "static.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "router.h"

#define STATIC__MAX_PATH 1024           /* raw bytes after the prefix */
#define STATIC__MAX_FILE (64u << 20)    /* larger files are not served */
#define STATIC__CACHE_FILE (4u << 20)   /* larger files are read for each request */
#define STATIC__CACHE_BYTES (64u << 20) /* all cached files together */
#define STATIC__CACHE_ENTRIES 512

/* The headers of a ";csp" mount (see the top). 'self' in connect-src also
 * admits ws:/wss: to this host (CSP level 3). */
#define STATIC__CSP_HEADERS                                                                                     \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "        \
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "             \
    "frame-ancestors 'none'\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"

typedef struct {
    char prefix[256];
    size_t prefix_len;
    char dir[PATH_MAX - STATIC__MAX_PATH - 16];
    int immutable;
    int csp; /* ";csp": STATIC__CSP_HEADERS on every file */
} static__mount_t;

/* One version of one file. */
typedef struct {
    int refs;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    const char *type; /* Content-Type */
    int html;
    char etag[40]; /* "\"" 32 hex digits "\"" */
    size_t len;
    char data[];
} static__blob_t;

typedef struct {
    char *key; /* "<mount index>:<relative path>" */
    static__blob_t *blob;
    uint64_t used; /* tick of the last use */
} static__entry_t;

typedef struct {
    uv_work_t work;
    http_request_t *req;
    const static__mount_t *mount;
    char *key;
    static__blob_t *known; /* the cached version (a reference), or NULL */
    static__blob_t *fresh; /* the version this job read, or NULL */
    int status;            /* 200, 404 or 503 */
    char rel[STATIC__MAX_PATH + 1];
} static__job_t;

static uv_loop_t *loop;
static static__mount_t mounts[STATIC_MAX_MOUNTS];
static int nmounts;
static static__entry_t cache[STATIC__CACHE_ENTRIES];
static int ncache;
static size_t cache_bytes;
static uint64_t tick;

static const struct {
    const char *ext, *type;
} static__types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"wasm", "application/wasm"},
};

/* ---- configuration ---- */

/* Sets on m the options in opt[0..n) (";immutable", ";csp", in any
 * order). 0, or -1 for an unknown or empty one. */
static int static__options(static__mount_t *m, const char *opt, size_t n) {
    while (n > 0) {
        const char *end = memchr(opt + 1, ';', n - 1);
        size_t len = end ? (size_t)(end - opt) - 1 : n - 1;
        if (len == 9 && memcmp(opt + 1, "immutable", 9) == 0) m->immutable = 1;
        else if (len == 3 && memcmp(opt + 1, "csp", 3) == 0) m->csp = 1;
        else return -1;
        n -= len + 1;
        opt += len + 1;
    }
    return 0;
}

/* Adds the mount entry[0..n) (PREFIX=FOLDER[;immutable][;csp]). 0 or -1. */
static int static__parse(const char *entry, size_t n, char *err, size_t errlen) {
    const char *eq = memchr(entry, '=', n);
    if (nmounts == STATIC_MAX_MOUNTS)
        return snprintf(err, errlen, "more than %d static mounts", STATIC_MAX_MOUNTS), -1;
    if (!eq) return snprintf(err, errlen, "static mount '%.*s': expected PREFIX=FOLDER", (int)n, entry), -1;
    static__mount_t *m = &mounts[nmounts];
    memset(m, 0, sizeof *m);
    size_t plen = (size_t)(eq - entry), dlen = n - plen - 1;
    const char *dir = eq + 1, *opt = memchr(dir, ';', dlen);
    if (opt) {
        if (static__options(m, opt, dlen - (size_t)(opt - dir)) < 0)
            return snprintf(err, errlen, "static mount '%.*s': the options are ';immutable' and ';csp'", (int)n,
                            entry), -1;
        dlen = (size_t)(opt - dir);
    }
    if (plen < 2 || entry[0] != '/' || entry[plen - 1] == '/' || plen >= sizeof m->prefix)
        return snprintf(err, errlen, "static mount '%.*s': the prefix must start with '/', not end with it, and "
                                     "not be '/' alone", (int)n, entry), -1;
    for (size_t i = 0; i < plen; i++)
        if (!isalnum((unsigned char)entry[i]) && !strchr("/-_.~", entry[i]))
            return snprintf(err, errlen, "static mount '%.*s': the prefix may hold only letters, digits and /-_.~",
                            (int)n, entry), -1;
    if (dlen == 0 || dlen >= sizeof m->dir)
        return snprintf(err, errlen, "static mount '%.*s': the folder is empty or too long", (int)n, entry), -1;
    for (int i = 0; i < nmounts; i++)
        if (mounts[i].prefix_len == plen && memcmp(mounts[i].prefix, entry, plen) == 0)
            return snprintf(err, errlen, "static mount prefix '%.*s' given twice", (int)plen, entry), -1;
    memcpy(m->prefix, entry, plen);
    m->prefix[plen] = 0;
    m->prefix_len = plen;
    memcpy(m->dir, dir, dlen);
    m->dir[dlen] = 0;
    nmounts++;
    return 0;
}

int static_init(uv_loop_t *l, const char *spec, char *err, size_t errlen) {
    loop = l;
    nmounts = 0;
    for (const char *p = spec; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && isspace((unsigned char)*p)) p++, n--;
        while (n && isspace((unsigned char)p[n - 1])) n--;
        if (n && static__parse(p, n, err, errlen) < 0) return -1;
        if (!end) break;
        p = end + 1;
    }
    /* Longest prefix first, so the first match is the most specific. */
    for (int i = 1; i < nmounts; i++)
        for (int k = i; k > 0 && mounts[k].prefix_len > mounts[k - 1].prefix_len; k--) {
            static__mount_t t = mounts[k];
            mounts[k] = mounts[k - 1];
            mounts[k - 1] = t;
        }
    return 0;
}

/* ---- the cache (loop only) ---- */

static void static__unref(static__blob_t *b) {
    if (b && --b->refs == 0) free(b);
}

static static__entry_t *static__cache_find(const char *key) {
    for (int i = 0; i < ncache; i++)
        if (strcmp(cache[i].key, key) == 0) return &cache[i];
    return NULL;
}

static void static__cache_remove(static__entry_t *e) {
    cache_bytes -= e->blob->len;
    static__unref(e->blob);
    free(e->key);
    *e = cache[--ncache];
}

static void static__cache_evict(void) {
    static__entry_t *oldest = &cache[0];
    for (int i = 1; i < ncache; i++)
        if (cache[i].used < oldest->used) oldest = &cache[i];
    static__cache_remove(oldest);
}

/* Makes b the cached version of key (small files only). */
static void static__cache_put(const char *key, static__blob_t *b) {
    if (b->len > STATIC__CACHE_FILE) return;
    static__entry_t *e = static__cache_find(key);
    if (e) {
        cache_bytes -= e->blob->len;
        static__unref(e->blob);
    } else {
        while (ncache > 0 && (ncache == STATIC__CACHE_ENTRIES || cache_bytes + b->len > STATIC__CACHE_BYTES))
            static__cache_evict();
        char *k = strdup(key);
        if (!k) return;
        e = &cache[ncache++];
        e->key = k;
    }
    e->blob = b;
    b->refs++;
    cache_bytes += b->len;
    e->used = ++tick;
}

/* ---- the job (thread pool) ---- */

/* Resolves path into real and checks it lies under root (rlen bytes). */
static int static__inside(const char *path, const char *root, size_t rlen, char *real) {
    if (!realpath(path, real)) return 0;
    return strncmp(real, root, rlen) == 0 && (rlen == 1 || real[rlen] == '/' || real[rlen] == 0);
}

static void static__describe(static__blob_t *b, const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    b->type = "application/octet-stream";
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof static__types / sizeof *static__types; i++)
            if (strcasecmp(dot + 1, static__types[i].ext) == 0) {
                b->type = static__types[i].type;
                b->html = i < 2;
                break;
            }
    unsigned char sum[32];
    char hex[65];
    crypto_sha256(b->data, b->len, sum);
    crypto_hex(sum, 16, hex);
    snprintf(b->etag, sizeof b->etag, "\"%.32s\"", hex);
}

static void static__work(uv_work_t *w) {
    static__job_t *j = w->data;
    char root[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
    struct stat st;
    j->status = 404;
    if (!realpath(j->mount->dir, root)) return;
    size_t rlen = strlen(root);
    if (snprintf(path, sizeof path, "%s/%s", root, j->rel) >= (int)sizeof path) return;
    if (!static__inside(path, root, rlen, real) || stat(real, &st) < 0) return;
    if (S_ISDIR(st.st_mode)) {
        if (snprintf(path, sizeof path, "%s/index.html", real) >= (int)sizeof path) return;
        if (!static__inside(path, root, rlen, real)) return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > STATIC__MAX_FILE) {
        close(fd);
        return;
    }
    const static__blob_t *k = j->known;
    if (k && k->dev == st.st_dev && k->ino == st.st_ino && k->size == st.st_size &&
        k->mtime.tv_sec == st.st_mtim.tv_sec && k->mtime.tv_nsec == st.st_mtim.tv_nsec) {
        close(fd);
        j->status = 200;
        return;
    }
    static__blob_t *b = calloc(1, sizeof *b + (size_t)st.st_size + 1);
    if (!b) {
        close(fd);
        j->status = 503;
        return;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* shrunk meanwhile: serve what was there; its stat differs next time */
        got += (size_t)r;
    }
    close(fd);
    b->refs = 1;
    b->dev = st.st_dev;
    b->ino = st.st_ino;
    b->size = st.st_size;
    b->mtime = st.st_mtim;
    b->len = got;
    static__describe(b, real);
    j->fresh = b;
    j->status = 200;
}

/* 1 when If-None-Match names etag (or is "*"). */
static int static__not_modified(http_request_t *r, const char *etag) {
    size_t len, elen = strlen(etag);
    const char *p = http_header(r, "if-none-match", &len);
    if (!p) return 0;
    const char *end = p + len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e - s == 1 && *s == '*') return 1;
        if (e - s > 2 && s[0] == 'W' && s[1] == '/') s += 2;
        if ((size_t)(e - s) == elen && memcmp(s, etag, elen) == 0) return 1;
    }
    return 0;
}

static void static__respond(http_request_t *r, const static__mount_t *m, const static__blob_t *b) {
    char headers[1024];
    const char *cache_control = b->html || !m->immutable ? "no-cache" : "public, max-age=31536000, immutable";
    int n = snprintf(headers, sizeof headers,
                     "Content-Type: %s\r\nETag: %s\r\nCache-Control: %s\r\nX-Content-Type-Options: nosniff\r\n%s",
                     b->type, b->etag, cache_control, m->csp ? STATIC__CSP_HEADERS : "");
    /* A 304 announces the length of the 200 it stands for (RFC 9110, 8.6). */
    if (static__not_modified(r, b->etag)) http_respond(r, 304, headers, (size_t)n, NULL, b->len, NULL);
    else http_respond(r, 200, headers, (size_t)n, b->data, b->len, NULL);
}

static void static__done(uv_work_t *w, int status) {
    static__job_t *j = w->data;
    static__blob_t *b = j->fresh ? j->fresh : j->known;
    if (status == 0 && j->status == 200 && b) {
        if (j->fresh) static__cache_put(j->key, j->fresh);
        static__respond(j->req, j->mount, b);
    } else {
        static__entry_t *e = j->status == 404 ? static__cache_find(j->key) : NULL;
        if (e) static__cache_remove(e); /* deleted or moved out of reach */
        if (j->status == 503) http_respond_detail(j->req, 503, "Service temporarily unavailable", NULL);
        else http_respond_detail(j->req, 404, "Not Found", NULL);
    }
    static__unref(j->known);
    static__unref(j->fresh);
    free(j->key);
    free(j);
}

/* ---- requests (loop) ---- */

static const static__mount_t *static__match(const char *path, size_t len) {
    for (int i = 0; i < nmounts; i++) {
        const static__mount_t *m = &mounts[i];
        if (len >= m->prefix_len && memcmp(path, m->prefix, m->prefix_len) == 0 &&
            (len == m->prefix_len || path[m->prefix_len] == '/'))
            return m;
    }
    return NULL;
}

/* Decodes and checks raw[0..len), the path after the prefix ("" or
 * starting with '/'), into rel without its leading '/' (the rules at the
 * top). 0, or -1 for a 404. */
static int static__relative(const char *raw, size_t len, char *rel) {
    char buf[STATIC__MAX_PATH];
    size_t n;
    if (len > STATIC__MAX_PATH) return -1;
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '\\') return -1;
        if (raw[i] == '%' && i + 2 < len &&
            ((raw[i + 1] == '2' && (raw[i + 2] | 0x20) == 'f') || (raw[i + 1] == '5' && (raw[i + 2] | 0x20) == 'c')))
            return -1;
    }
    if (router_unescape(raw, len, buf, &n) < 0) return -1;
    size_t i = 1;
    while (i < n) {
        size_t start = i;
        while (i < n && buf[i] != '/') {
            if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f || buf[i] == '\\') return -1;
            i++;
        }
        if (i == start || buf[start] == '.' || i - start > NAME_MAX) return -1;
        if (i < n) i++; /* the '/'; a trailing one names a folder */
    }
    if (n > 1) memcpy(rel, buf + 1, n - 1);
    rel[n > 1 ? n - 1 : 0] = 0;
    return 0;
}

int static_handle(http_request_t *r) {
    const static__mount_t *m = static__match(r->path, r->path_len);
    if (!m) return 0;
    if (!r->is_head && !(r->method_len == 3 && memcmp(r->method, "GET", 3) == 0)) {
        http_respond_detail(r, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return 1;
    }
    static__job_t *j = calloc(1, sizeof *j);
    if (!j) {
        http_respond_detail(r, 503, "Service temporarily unavailable", NULL);
        return 1;
    }
    if (static__relative(r->path + m->prefix_len, r->path_len - m->prefix_len, j->rel) < 0) {
        free(j);
        http_respond_detail(r, 404, "Not Found", NULL);
        return 1;
    }
    size_t klen = strlen(j->rel) + 16;
    j->key = malloc(klen);
    if (!j->key) {
        free(j);
        http_respond_detail(r, 503, "Service temporarily unavailable", NULL);
        return 1;
    }
    snprintf(j->key, klen, "%d:%s", (int)(m - mounts), j->rel);
    static__entry_t *e = static__cache_find(j->key);
    if (e) {
        e->used = ++tick;
        j->known = e->blob;
        j->known->refs++;
    }
    j->req = r;
    j->mount = m;
    j->work.data = j;
    if (uv_queue_work(loop, &j->work, static__work, static__done) < 0) {
        static__unref(j->known);
        free(j->key);
        free(j);
        http_respond_detail(r, 503, "Service temporarily unavailable", NULL);
    }
    return 1;
}
