/* router.c - the segment trie behind router.h.
 *
 * Each trie node stands for a sequence of pattern segments. It has a sorted
 * array of literal children (binary search), at most one parameter child
 * shared by every parameter name and type at that position, and the routes
 * whose pattern ends there, one per method. A route remembers whether its
 * pattern ended in '/', which decides whether a path with a trailing slash
 * may end at that node. Matching is a depth-first search that tries the
 * literal child before the parameter child and backtracks; as every trie node
 * is reached by one path only, it visits each node at most once. Methods are
 * interned per router so a node's routes are compared by a small index and
 * the Allow header is built from a bit mask. */
#include "router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Interned indices of the methods every router knows, in Allow order. */
enum { M_GET, M_HEAD, M_POST, M_PUT, M_PATCH, M_DELETE, M_OPTIONS, M_STD };

static const char *const std_methods[M_STD] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

struct rparam {
    const char *name; /* points into the owning route's pattern copy */
    size_t len;
    char type;
};

struct rroute {
    int route_id;
    unsigned char method;  /* interned index */
    unsigned char slash;   /* pattern ended in '/' */
    unsigned char nparams;
    char *pattern;         /* owned copy holding the parameter names */
    struct rparam params[ROUTER_MAX_PARAMS];
};

struct rnode {
    struct rnode **lit; /* sorted by (label length, label bytes) */
    size_t nlit, caplit;
    struct rnode *param;
    struct rroute *routes;
    size_t nroutes, caproutes;
    size_t label_len;
    char label[]; /* literal label, not NUL-terminated; empty for root/param */
};

struct router {
    struct rnode *root;
    unsigned nmethods;
    unsigned char mlen[ROUTER_MAX_METHODS];
    char methods[ROUTER_MAX_METHODS][ROUTER_MAX_METHOD];
    unsigned char order[ROUTER_MAX_METHODS]; /* interned indices, Allow order */
};

/* A pattern split and validated by router__parse_pattern. */
struct pattern {
    unsigned nseg, np;
    int slash;
    const char *seg[ROUTER_MAX_SEGMENTS];
    size_t seg_len[ROUTER_MAX_SEGMENTS];
    unsigned char is_param[ROUTER_MAX_SEGMENTS];
    struct rparam params[ROUTER_MAX_PARAMS];
};

/* State of one router_match search. */
struct mctx {
    const char *seg[ROUTER_MAX_SEGMENTS];
    size_t seg_len[ROUTER_MAX_SEGMENTS];
    unsigned nseg;
    int trailing; /* the path ended in '/' */
    int method;   /* interned index of the request method, or -1 */
    unsigned np;
    unsigned char pidx[ROUTER_MAX_PARAMS]; /* segment index of each param */
    uint32_t allow;                        /* methods of path-matching nodes */
    router_match_t *m;
};

static struct rnode *router__node_new(const char *label, size_t len) {
    struct rnode *n = calloc(1, sizeof *n + len);
    if (n) {
        memcpy(n->label, label, len);
        n->label_len = len;
    }
    return n;
}

static void router__node_free(struct rnode *n) {
    if (!n) return;
    for (size_t i = 0; i < n->nlit; i++) router__node_free(n->lit[i]);
    router__node_free(n->param);
    for (size_t i = 0; i < n->nroutes; i++) free(n->routes[i].pattern);
    free(n->lit);
    free(n->routes);
    free(n);
}

static int router__label_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    if (alen != blen) return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Index of the literal child labelled s, or where it would be inserted;
 * *found tells which. */
static size_t router__lit_search(const struct rnode *n, const char *s, size_t len,
                         int *found) {
    size_t lo = 0, hi = n->nlit;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct rnode *c = n->lit[mid];
        int cmp = router__label_cmp(c->label, c->label_len, s, len);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

router_t *router_new(void) {
    router_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->root = router__node_new("", 0);
    if (!r->root) {
        free(r);
        return NULL;
    }
    for (unsigned i = 0; i < M_STD; i++) {
        r->mlen[i] = (unsigned char)strlen(std_methods[i]);
        memcpy(r->methods[i], std_methods[i], r->mlen[i]);
        r->order[i] = (unsigned char)i;
    }
    r->nmethods = M_STD;
    return r;
}

void router_free(router_t *r) {
    if (!r) return;
    router__node_free(r->root);
    free(r);
}

const char *router_strerror(int code) {
    switch (code) {
    case ROUTER_OK: return "success";
    case ROUTER_EPATTERN: return "malformed route pattern";
    case ROUTER_EMETHOD: return "invalid method token";
    case ROUTER_EDUP: return "duplicate route";
    case ROUTER_ELIMIT: return "route exceeds router limits";
    case ROUTER_ENOMEM: return "out of memory";
    default: return "unknown router error";
    }
}

/* Lexicographic byte order, a prefix before its extensions. */
static int router__lex_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int cmp = memcmp(a, b, alen < blen ? alen : blen);
    if (cmp) return cmp;
    return alen < blen ? -1 : alen > blen;
}

static int router__method_lookup(const router_t *r, const char *m, size_t len) {
    for (unsigned i = 0; i < r->nmethods; i++)
        if (r->mlen[i] == len && memcmp(r->methods[i], m, len) == 0)
            return (int)i;
    return -1;
}

/* Returns the interned index of a valid method token, interning it (and
 * placing it alphabetically after the standard methods in Allow order). */
static int router__method_intern(router_t *r, const char *m) {
    size_t len = strlen(m);
    if (len == 0 || len > ROUTER_MAX_METHOD || m[0] < 'A' || m[0] > 'Z')
        return ROUTER_EMETHOD;
    for (size_t i = 1; i < len; i++) {
        char c = m[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return ROUTER_EMETHOD;
    }
    int idx = router__method_lookup(r, m, len);
    if (idx >= 0) return idx;
    if (r->nmethods == ROUTER_MAX_METHODS) return ROUTER_ELIMIT;
    idx = (int)r->nmethods++;
    r->mlen[idx] = (unsigned char)len;
    memcpy(r->methods[idx], m, len);
    unsigned pos = (unsigned)idx;
    while (pos > M_STD && router__lex_cmp(r->methods[r->order[pos - 1]],
                                  r->mlen[r->order[pos - 1]], m, len) > 0) {
        r->order[pos] = r->order[pos - 1];
        pos--;
    }
    r->order[pos] = (unsigned char)idx;
    return idx;
}

static int router__name_valid(const char *s, size_t len) {
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && (i == 0 || c < '0' || c > '9')) return 0;
    }
    return 1;
}

/* Parses one segment s[0..len) (non-empty) into p. */
static int router__parse_segment(const char *s, size_t len, struct pattern *p) {
    unsigned i = p->nseg;
    p->seg[i] = s;
    p->seg_len[i] = len;
    if (s[0] != '{') {
        if (memchr(s, '{', len) || memchr(s, '}', len)) return ROUTER_EPATTERN;
        p->is_param[i] = 0;
        return ROUTER_OK;
    }
    if (len < 3 || s[len - 1] != '}') return ROUTER_EPATTERN;
    const char *in = s + 1;
    size_t inlen = len - 2;
    if (memchr(in, '{', inlen) || memchr(in, '}', inlen)) return ROUTER_EPATTERN;
    const char *colon = memchr(in, ':', inlen);
    size_t nlen = colon ? (size_t)(colon - in) : inlen;
    char type = 's';
    if (colon) {
        size_t tlen = inlen - nlen - 1;
        if (tlen == 3 && memcmp(colon + 1, "int", 3) == 0)
            type = 'i';
        else if (!(tlen == 3 && memcmp(colon + 1, "str", 3) == 0))
            return ROUTER_EPATTERN;
    }
    if (!router__name_valid(in, nlen)) return ROUTER_EPATTERN;
    for (unsigned k = 0; k < p->np; k++)
        if (p->params[k].len == nlen && memcmp(p->params[k].name, in, nlen) == 0)
            return ROUTER_EPATTERN;
    if (p->np == ROUTER_MAX_PARAMS) return ROUTER_ELIMIT;
    p->params[p->np].name = in;
    p->params[p->np].len = nlen;
    p->params[p->np].type = type;
    p->np++;
    p->is_param[i] = 1;
    return ROUTER_OK;
}

static int router__parse_pattern(const char *pat, struct pattern *p) {
    memset(p, 0, sizeof *p);
    if (pat[0] != '/') return ROUTER_EPATTERN;
    size_t len = strlen(pat);
    if (len == 1) {
        p->slash = 1;
        return ROUTER_OK;
    }
    const char *s = pat + 1, *end = pat + len;
    if (end[-1] == '/') {
        p->slash = 1;
        end--;
    }
    for (;;) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (!e) e = end;
        if (e == s) return ROUTER_EPATTERN;
        if (p->nseg == ROUTER_MAX_SEGMENTS) return ROUTER_ELIMIT;
        int rc = router__parse_segment(s, (size_t)(e - s), p);
        if (rc) return rc;
        p->nseg++;
        if (e == end) return ROUTER_OK;
        s = e + 1;
    }
}

/* Returns the literal child of n labelled s, creating it if needed. */
static struct rnode *router__lit_child(struct rnode *n, const char *s, size_t len) {
    int found;
    size_t at = router__lit_search(n, s, len, &found);
    if (found) return n->lit[at];
    if (n->nlit == n->caplit) {
        size_t cap = n->caplit ? n->caplit * 2 : 4;
        struct rnode **lit = realloc(n->lit, cap * sizeof *lit);
        if (!lit) return NULL;
        n->lit = lit;
        n->caplit = cap;
    }
    struct rnode *c = router__node_new(s, len);
    if (!c) return NULL;
    memmove(n->lit + at + 1, n->lit + at, (n->nlit - at) * sizeof *n->lit);
    n->lit[at] = c;
    n->nlit++;
    return c;
}

int router_add(router_t *r, const char *method, const char *pattern,
               int route_id) {
    struct pattern p;
    int rc = router__parse_pattern(pattern, &p);
    if (rc) return rc;
    int midx = router__method_intern(r, method);
    if (midx < 0) return midx;

    struct rnode *n = r->root;
    for (unsigned i = 0; i < p.nseg; i++) {
        if (p.is_param[i]) {
            if (!n->param && !(n->param = router__node_new("", 0))) return ROUTER_ENOMEM;
            n = n->param;
        } else if (!(n = router__lit_child(n, p.seg[i], p.seg_len[i]))) {
            return ROUTER_ENOMEM;
        }
    }
    for (size_t i = 0; i < n->nroutes; i++)
        if (n->routes[i].method == midx) return ROUTER_EDUP;
    if (n->nroutes == n->caproutes) {
        size_t cap = n->caproutes ? n->caproutes * 2 : 2;
        struct rroute *routes = realloc(n->routes, cap * sizeof *routes);
        if (!routes) return ROUTER_ENOMEM;
        n->routes = routes;
        n->caproutes = cap;
    }
    struct rroute *rt = &n->routes[n->nroutes];
    size_t plen = strlen(pattern) + 1;
    if (!(rt->pattern = malloc(plen))) return ROUTER_ENOMEM;
    memcpy(rt->pattern, pattern, plen);
    rt->route_id = route_id;
    rt->method = (unsigned char)midx;
    rt->slash = (unsigned char)p.slash;
    rt->nparams = (unsigned char)p.np;
    for (unsigned k = 0; k < p.np; k++) {
        rt->params[k] = p.params[k];
        rt->params[k].name = rt->pattern + (p.params[k].name - pattern);
    }
    n->nroutes++;
    return ROUTER_OK;
}

/* The path ends at n: records its methods for Allow and, when one of its
 * routes serves the request method, fills the result and returns 1. */
static int router__match_end(const struct rnode *n, struct mctx *c) {
    const struct rroute *hit = NULL, *get = NULL;
    for (size_t i = 0; i < n->nroutes; i++) {
        const struct rroute *rt = &n->routes[i];
        if (c->trailing && !rt->slash) continue;
        c->allow |= UINT32_C(1) << rt->method;
        if (rt->method == c->method)
            hit = rt;
        else if (rt->method == M_GET)
            get = rt;
    }
    int fallback = 0;
    if (!hit && c->method == M_HEAD && get) {
        hit = get;
        fallback = 1;
    }
    if (!hit) return 0;
    router_match_t *m = c->m;
    m->status = ROUTER_FOUND;
    m->route_id = hit->route_id;
    m->head_fallback = fallback;
    m->nparams = hit->nparams;
    for (unsigned k = 0; k < hit->nparams; k++) {
        m->params[k].name = hit->params[k].name;
        m->params[k].name_len = hit->params[k].len;
        m->params[k].type = hit->params[k].type;
        m->params[k].value = c->seg[c->pidx[k]];
        m->params[k].value_len = c->seg_len[c->pidx[k]];
    }
    return 1;
}

/* Depth-first search below n for segments depth..nseg; recursion is bounded
 * by ROUTER_MAX_SEGMENTS. */
static int router__match_walk(const struct rnode *n, struct mctx *c, unsigned depth) {
    if (depth == c->nseg) return router__match_end(n, c);
    int found;
    size_t at = router__lit_search(n, c->seg[depth], c->seg_len[depth], &found);
    if (found && router__match_walk(n->lit[at], c, depth + 1)) return 1;
    if (n->param && c->np < ROUTER_MAX_PARAMS) {
        c->pidx[c->np++] = (unsigned char)depth;
        if (router__match_walk(n->param, c, depth + 1)) return 1;
        c->np--;
    }
    return 0;
}

/* Writes the Allow list of mask into m->allow. */
static void router__allow_format(const router_t *r, uint32_t mask, router_match_t *m) {
    if (mask & (UINT32_C(1) << M_GET)) mask |= UINT32_C(1) << M_HEAD;
    size_t len = 0;
    for (unsigned i = 0; i < r->nmethods; i++) {
        unsigned idx = r->order[i];
        if (!(mask & (UINT32_C(1) << idx))) continue;
        size_t need = (len ? 2 : 0) + r->mlen[idx];
        if (len + need >= sizeof m->allow) break;
        if (len) {
            memcpy(m->allow + len, ", ", 2);
            len += 2;
        }
        memcpy(m->allow + len, r->methods[idx], r->mlen[idx]);
        len += r->mlen[idx];
    }
    m->allow[len] = '\0';
}

void router_match(const router_t *r, const char *method, size_t method_len,
                  const char *path, size_t path_len, router_match_t *m) {
    m->status = ROUTER_NOT_FOUND;
    m->route_id = -1;
    m->head_fallback = 0;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (path_len == 0 || path[0] != '/') return;

    struct mctx c;
    c.nseg = 0;
    c.np = 0;
    c.allow = 0;
    c.m = m;
    c.method = router__method_lookup(r, method, method_len);
    c.trailing = path[path_len - 1] == '/';
    if (path_len > 1) {
        const char *s = path + 1;
        const char *end = path + path_len - (size_t)c.trailing;
        for (;;) {
            const char *e = memchr(s, '/', (size_t)(end - s));
            if (!e) e = end;
            if (e == s || c.nseg == ROUTER_MAX_SEGMENTS) return;
            c.seg[c.nseg] = s;
            c.seg_len[c.nseg] = (size_t)(e - s);
            c.nseg++;
            if (e == end) break;
            s = e + 1;
        }
    }
    if (router__match_walk(r->root, &c, 0)) return;
    if (c.allow) {
        m->status = ROUTER_METHOD_NOT_ALLOWED;
        router__allow_format(r, c.allow, m);
    }
}

static int router__hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int router_unescape(const char *in, size_t len, char *out, size_t *outlen) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (len - i < 3) return -1;
            int h = router__hexval(in[i + 1]), l = router__hexval(in[i + 2]);
            if (h < 0 || l < 0) return -1;
            ch = (char)(h << 4 | l);
            i += 2;
        }
        if (ch == '\0') return -1;
        out[o++] = ch;
    }
    *outlen = o;
    return 0;
}
