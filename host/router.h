/* router.h - maps (method, path) to the route id a Lua script registered.
 *
 * The scripts declare their routes at every (re)load; the worker builds one
 * router per script generation and matches every request against it. Patterns
 * are absolute paths of '/'-separated segments, each a literal (byte-exact,
 * case-sensitive) or a parameter "{name}" / "{name:str}" / "{name:int}". A
 * parameter matches one non-empty segment of any content: the type is only
 * reported, the Lua layer validates it (and answers 422). Literals win over
 * parameters at each level, with backtracking. A pattern ending in '/' also
 * matches the path without that slash; any other pattern matches exactly.
 * Matching walks a segment trie, allocates nothing and is bounded by
 * ROUTER_MAX_SEGMENTS. */
#ifndef CCHOST_ROUTER_H
#define CCHOST_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 8     /* parameters in one pattern */
#define ROUTER_MAX_SEGMENTS 32  /* segments in a pattern or a matched path */
#define ROUTER_MAX_METHOD 15    /* bytes in a method token */
#define ROUTER_MAX_METHODS 32   /* distinct method tokens in one router */

enum {
    ROUTER_OK = 0,
    ROUTER_EPATTERN = -1, /* malformed pattern */
    ROUTER_EMETHOD = -2,  /* method is not an uppercase token */
    ROUTER_EDUP = -3,     /* same method and an equivalent pattern exist */
    ROUTER_ELIMIT = -4,   /* too many segments, parameters or methods */
    ROUTER_ENOMEM = -5
};

enum { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

typedef struct router router_t;

typedef struct {
    const char *name;  /* parameter name, owned by the router, not NUL-ended */
    size_t name_len;
    char type;         /* 'i' int, 's' str */
    const char *value; /* raw (still percent-encoded) segment of the path */
    size_t value_len;
} router_param_t;

typedef struct {
    int status;        /* ROUTER_FOUND, ROUTER_NOT_FOUND, ... */
    int route_id;      /* when FOUND, else -1 */
    int head_fallback; /* FOUND: a HEAD request served by the GET route */
    int nparams;       /* when FOUND, in pattern order */
    router_param_t params[ROUTER_MAX_PARAMS];
    char allow[96];    /* METHOD_NOT_ALLOWED: "GET, HEAD, POST", else "" */
} router_match_t;

/* Returns an empty router, or NULL when out of memory. */
router_t *router_new(void);

/* Frees the router and everything it owns; NULL is a no-op. Parameter names
 * in earlier match results become invalid. */
void router_free(router_t *r);

/* Registers route_id for method (an uppercase token: [A-Z][A-Z0-9_-]*, at
 * most ROUTER_MAX_METHOD bytes, e.g. "GET" or the pseudo-method "WS") and
 * pattern (NUL-terminated, copied). Returns 0 or:
 *   ROUTER_EPATTERN  no leading '/', empty segment ("//"), brace in a literal,
 *                    unbalanced braces, bad name ([A-Za-z_][A-Za-z0-9_]*),
 *                    unknown type, or a name repeated within the pattern;
 *   ROUTER_EMETHOD   bad method token;
 *   ROUTER_EDUP      the method is already registered for a pattern of the
 *                    same shape (parameter names and types ignored, and "/x"
 *                    equals "/x/" since both match "/x");
 *   ROUTER_ELIMIT    more than ROUTER_MAX_SEGMENTS segments, more than
 *                    ROUTER_MAX_PARAMS parameters, or more than
 *                    ROUTER_MAX_METHODS distinct methods in the router;
 *   ROUTER_ENOMEM.
 * A failed call leaves the routes registered so far intact. */
int router_add(router_t *r, const char *method, const char *pattern,
               int route_id);

/* Static English text for a ROUTER_E* code (or 0). */
const char *router_strerror(int code);

/* Matches a request. path is the raw request-target path without the query
 * string; neither method nor path needs a NUL. Fills *m:
 *   FOUND              the first route in priority order (literal before
 *                      parameter, depth first) whose pattern matches the path
 *                      and has this method; a HEAD request falls back to the
 *                      GET route of a pattern that has no HEAD route, and
 *                      sets head_fallback;
 *   METHOD_NOT_ALLOWED some pattern matches the path, none with this method;
 *                      allow lists the union of their methods in the order
 *                      GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, then the
 *                      others alphabetically, with HEAD whenever GET is
 *                      (methods that would overflow allow are left out);
 *   NOT_FOUND          otherwise, including paths with more than
 *                      ROUTER_MAX_SEGMENTS segments or not starting with '/'.
 * Parameter values point into path, names into the router. */
void router_match(const router_t *r, const char *method, size_t method_len,
                  const char *path, size_t path_len, router_match_t *m);

/* Percent-decodes in[0..len) into out, which must hold len bytes; stores the
 * decoded length in *outlen. '+' is kept as is. Returns 0, or -1 on '%' not
 * followed by two hex digits or on a NUL byte (raw or decoded). */
int router_unescape(const char *in, size_t len, char *out, size_t *outlen);

#endif
