/* static.h - static files from configured folders, served by C.
 *
 * STATIC_MOUNTS maps URL prefixes to folders (the docs pages of /docs and
 * /redoc, the browser console of /console, their vendor assets). A request
 * under a mount never enters Lua: the file is looked up, read and checked on the
 * libuv thread pool and answered from the loop, with its Content-Type, an
 * ETag (If-None-Match -> 304), Cache-Control by kind of file, and HEAD.
 * Anything outside the folder is a 404. See static.c for the rules. */
#ifndef CCHOST_STATIC_H
#define CCHOST_STATIC_H

#include <stddef.h>
#include <uv.h>

#include "http.h"

#define STATIC_MAX_MOUNTS 16

/* Parses mounts, a comma list of PREFIX=FOLDER[;immutable][;csp] (PREFIX
 * starts with '/', has no trailing '/' and is not "/" alone; FOLDER is a
 * path, relative ones against the working folder; ";immutable" marks a
 * folder of versioned files, cached by browsers for a year; ";csp" an
 * application served with a strict Content-Security-Policy, frame-ancestors
 * 'none' included, see static.c), and keeps it for
 * static_handle() on loop. Folders need not exist yet (each request resolves
 * its folder afresh, so a folder installed later is served at once). An
 * empty string configures no mount. Returns 0, or -1 with err naming the
 * malformed entry. Call once per process, before the first request. */
int static_init(uv_loop_t *loop, const char *mounts, char *err, size_t errlen);

/* Claims req when its path is a mount prefix or lies under one (the longest
 * prefix wins) and answers it, now or from a thread-pool completion: 200
 * with the file (HEAD: without the body), 304 when If-None-Match names its
 * ETag, 404 {"detail":"Not Found"} for a path that is malformed, escapes the
 * folder or names no regular file, 405 for methods other than GET and HEAD.
 * Returns 1 when claimed, 0 when req is not under a mount (the caller routes
 * it as usual). Costs one prefix comparison per mount when it returns 0. */
int static_handle(http_request_t *req);

#endif
