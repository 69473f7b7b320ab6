/*
 * terway CNI plugin: the native front of the Python plugin (terway/cni/main.py).
 *
 * Why it exists: a runtime executes the plugin once per pod ADD/DEL, and CPython's own start
 * (~13 ms of page faults on a small VM) costs more than a Go plugin's whole ADD. This program
 * starts in well under a millisecond and decides nothing: it forwards the CNI environment and
 * stdin to the warm daemon (RPC method ExecCNI, see terway/daemon/cniexec.py), which runs the
 * very same Python plugin code in-process and returns its exit code, stdout and stderr.
 *
 * Whenever that fast path cannot be taken (daemon not running, an older daemon without
 * ExecCNI, a reply not understood, input too large, stdin that cannot be read) it executes the
 * Python plugin installed next to it ("<this executable>-python") with the same argv,
 * environment and stdin, so every answer - including every error - is still the Python
 * plugin's. Both are safe to run twice: the daemon answers a repeated ADD for one sandbox with
 * the same address and refuses a concurrent one (RequestInFlight). Only if that fallback cannot
 * run either does this program write its own CNI error (code 11).
 *
 * The reply is one JSON line, {"v":1,"ok":true,"result":{"exit":N,"stdout":B64,"stderr":B64}},
 * read by a small strict JSON reader (any key order and whitespace, escapes decoded, unknown
 * keys ignored, exit a plain integer in 0..255, canonical base64); anything else - an error
 * reply such as UnknownMethod included - means the fallback.
 *
 * Deadline: connecting, sending the request and receiving the reply together take at most the
 * netconf's top-level "rpc_timeout" (when it is a plain JSON integer in 1..3600, found the way
 * the socket path is guessed), else 120 s (the Python plugin's default, terway/rpc/cnicodec.py).
 * When it passes - a stopped daemon, one that accepts and never answers or answers a byte at a
 * time, a full listen backlog - there is no fallback (it would wait as long again while the
 * daemon may still be working on the request): the front prints CNI error 101 (daemon timeout)
 * and exits 1. A connect that fails at once (no daemon) still means the fallback.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -static -o terway shim.c  (terway/cni/native.py does this;
 * tests/cni/test_front_fuzz.py builds it with ASan and UBSan and feeds it generated input).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAST_STDIN (512 << 10)    /* base64 of it fits the daemon's 1 MiB line limit */
#define MAX_REPLY (4 << 20)           /* longest reply line (without its newline) */
#define MAX_DEPTH 64                  /* nesting in a reply; deeper is not a reply of ours */
#define DEFAULT_SOCKET "/var/run/eni/eni.socket"
#define FALLBACK_SUFFIX "-python"
#define TRY_AGAIN_LATER 11            /* CNI error code: the runtime retries */
#define DAEMON_TIMEOUT 101            /* terway/cni/config.py DAEMON_TIMEOUT */
#define DEFAULT_TIMEOUT 120           /* seconds: terway/rpc/cnicodec.py DEFAULT_TIMEOUT */
#define MIN_TIMEOUT 1                 /* terway/cni/config.py MIN_RPC_TIMEOUT, MAX_RPC_TIMEOUT */
#define MAX_TIMEOUT 3600

enum { FAST_FALLBACK = -1, FAST_TIMEOUT = -2 };  /* fast_path's outcomes besides an exit code */

extern char **environ;

/* A growable byte buffer, NUL-terminated whenever it is allocated; `oom` once growing failed. */
struct buf {
    char *data;
    size_t len, cap;
    int oom;
};

static int buf_reserve(struct buf *b, size_t extra) {
    if (b->oom || extra > SIZE_MAX / 4 - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) {
        b->oom = 1;
        return -1;
    }
    b->data = data;
    b->cap = cap;
    b->data[b->len] = '\0';  /* whatever happens next, a reader finds a terminated string */
    return 0;
}

static int buf_put(struct buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int buf_str(struct buf *b, const char *s) { return buf_put(b, s, strlen(s)); }

/* Read fd to EOF; -1 on error (errno set) or past `limit` bytes. Once allocated the buffer is
 * NUL-terminated, on every path. */
static int read_all(int fd, struct buf *b, size_t limit) {
    for (;;) {
        if (buf_reserve(b, 65536) < 0) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        if (b->len > limit) {
            errno = EFBIG;
            return -1;
        }
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);  /* never die of SIGPIPE */
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* The length of the well-formed UTF-8 sequence at s (at most `avail` bytes), or 0: overlong
 * forms, surrogates and code points past U+10FFFF are not well-formed. */
static size_t utf8_len(const unsigned char *s, size_t avail) {
    unsigned c = s[0], cp, min;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static char *utf8_put(char *w, unsigned long cp) {
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | cp >> 12);
        *w++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (char)(0xF0 | cp >> 18);
        *w++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/* ---- base64 (RFC 4648): the daemon decodes with binascii ------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_put(struct buf *out, const unsigned char *p, size_t n) {
    if (buf_reserve(out, (n + 2) / 3 * 4) < 0)
        return -1;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = B64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static int b64_value(char c) {
    const char *at = c ? strchr(B64, c) : NULL;
    return at ? (int)(at - B64) : -1;
}

/* Decode `n` base64 chars into `out` (which may alias `s`); its length, or -1 unless the input
 * is canonical: padded to a multiple of 4, '=' only at the end, unused bits zero. */
static long b64_decode(const char *s, size_t n, char *out) {
    if (n % 4)
        return -1;
    long len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        if (i + 4 == n)
            pad = s[i + 3] != '=' ? 0 : s[i + 2] != '=' ? 1 : 2;
        int v[4] = {0, 0, 0, 0};
        for (int k = 0; k < 4 - pad; k++)
            if ((v[k] = b64_value(s[i + k])) < 0)
                return -1;
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                     (unsigned)v[3];
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF)))
            return -1;
        out[len++] = (char)(w >> 16);
        if (pad < 2)
            out[len++] = (char)(w >> 8 & 255);
        if (pad < 1)
            out[len++] = (char)(w & 255);
    }
    return len;
}

/* ---- the netconf, read only as far as a guess needs ------------------------------------ */

/* Where the value of "key" starts when the key occurs exactly once, followed by ':'; else
 * NULL. Only a guess (the key might sit in a nested object): the daemon re-reads the netconf
 * with the real parser, and talks to the daemon the netconf names if that is not itself. */
static const char *netconf_value(const char *conf, const char *key) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(conf, quoted);
    if (!at || strstr(at + 1, quoted))
        return NULL;
    const char *p = at + strlen(quoted);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p++ != ':')
        return NULL;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The value of "key" when it is a plain (escape-free, non-empty) string; else NULL. */
static char *netconf_string(const char *conf, const char *key, char *out, size_t size) {
    const char *p = netconf_value(conf, key);
    if (!p || *p++ != '"')
        return NULL;
    size_t n = strcspn(p, "\"\\");
    if (p[n] != '"' || n == 0 || n >= size)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* The value of "key" when it is a plain JSON integer (digits only: no sign, fraction or
 * exponent) in min..max; else `dflt`. */
static long netconf_int(const char *conf, const char *key, long min, long max, long dflt) {
    const char *p = netconf_value(conf, key);
    if (!p || *p < '1' || *p > '9')
        return dflt;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (v <= max)
            v = v * 10 + (*p - '0');
    if (!strchr(" \t\r\n,}", *p))  /* also the terminating NUL: a truncated netconf */
        return dflt;
    return v >= min && v <= max ? v : dflt;
}

/* ---- the reply: one line of JSON, read strictly ------------------------------------------ */

/* A reader over [p, end); strings are decoded in place (never longer than their source). */
struct json {
    char *p, *end;
    int depth;
};

static void json_ws(struct json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int json_eat(struct json *j, char c) {
    json_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int json_literal(struct json *j, const char *word) {
    size_t n = strlen(word);
    json_ws(j);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static long json_hex4(struct json *j) {
    if (j->end - j->p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* The code point of a \u escape (its "\u" already read), a surrogate pair joined; -1 when
 * malformed or a lone surrogate. */
static long json_unicode(struct json *j) {
    long cp = json_hex4(j);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return -1;
    if (cp < 0xD800 || cp > 0xDBFF)
        return cp;
    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
        return -1;
    j->p += 2;
    long low = json_hex4(j);
    if (low < 0xDC00 || low > 0xDFFF)
        return -1;
    return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
}

/* A string, decoded in place: *out and *len are its bytes (UTF-8, may contain NUL). */
static int json_string_value(struct json *j, char **out, size_t *len) {
    json_ws(j);
    if (j->p >= j->end || *j->p != '"')
        return -1;
    char *w = ++j->p, *start = w;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            *out = start;
            *len = (size_t)(w - start);
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)j->p, (size_t)(j->end - j->p));
            if (n == 0)
                return -1;
            memmove(w, j->p, n);
            w += n;
            j->p += n;
            continue;
        }
        if (j->end - j->p < 2)
            return -1;
        char e = j->p[1];
        j->p += 2;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) {
            *w++ = to[at - from];
        } else if (e == 'u') {
            long cp = json_unicode(j);
            if (cp < 0)
                return -1;
            w = utf8_put(w, (unsigned long)cp);
        } else {
            return -1;
        }
    }
    return -1;
}

static int json_digits(struct json *j) {
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return -1;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return 0;
}

/* Any number, checked against JSON's grammar and skipped. */
static int json_skip_number(struct json *j) {
    json_ws(j);
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (json_digits(j) < 0)
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (json_digits(j) < 0)
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (json_digits(j) < 0)
            return -1;
    }
    return 0;
}

/* A non-negative integer written as one (no sign, leading zero, fraction or exponent) and at
 * most `max`. */
static int json_small_uint(struct json *j, unsigned max, unsigned *out) {
    json_ws(j);
    char *start = j->p;
    unsigned long v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        v = v * 10 + (unsigned long)(*j->p++ - '0');
        if (v > max)
            return -1;
    }
    if (j->p == start || (*start == '0' && j->p - start > 1))
        return -1;
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return -1;
    *out = (unsigned)v;
    return 0;
}

typedef int (*json_member)(struct json *j, const char *key, size_t len, void *ctx);

static int json_skip(struct json *j);

/* An object, each member's value read by `member` (called after its key and colon). */
static int json_object(struct json *j, json_member member, void *ctx) {
    if (!json_eat(j, '{') || ++j->depth > MAX_DEPTH)
        return -1;
    if (!json_eat(j, '}')) {
        do {
            char *key;
            size_t len;
            if (json_string_value(j, &key, &len) < 0 || !json_eat(j, ':') ||
                member(j, key, len, ctx) < 0)
                return -1;
        } while (json_eat(j, ','));
        if (!json_eat(j, '}'))
            return -1;
    }
    j->depth--;
    return 0;
}

static int skip_member(struct json *j, const char *key, size_t len, void *ctx) {
    (void)key, (void)len, (void)ctx;
    return json_skip(j);
}

static int json_skip_array(struct json *j) {
    if (!json_eat(j, '[') || ++j->depth > MAX_DEPTH)
        return -1;
    if (!json_eat(j, ']')) {
        do {
            if (json_skip(j) < 0)
                return -1;
        } while (json_eat(j, ','));
        if (!json_eat(j, ']'))
            return -1;
    }
    j->depth--;
    return 0;
}

/* Any value, checked and skipped (nesting bounded by MAX_DEPTH, so is the recursion). */
static int json_skip(struct json *j) {
    json_ws(j);
    if (j->p >= j->end)
        return -1;
    char *s;
    size_t n;
    switch (*j->p) {
    case '"': return json_string_value(j, &s, &n);
    case '{': return json_object(j, skip_member, NULL);
    case '[': return json_skip_array(j);
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: return json_skip_number(j);
    }
}

struct reply {
    unsigned seen;  /* SEEN_* bits: each key at most once */
    unsigned v, exit;
    char *out, *err;
    long out_len, err_len;
};

enum { SEEN_V = 1, SEEN_OK = 2, SEEN_RESULT = 4, SEEN_EXIT = 8, SEEN_STDOUT = 16,
       SEEN_STDERR = 32, SEEN_ALL = 63 };

static int is_key(const char *key, size_t len, const char *name) {
    return len == strlen(name) && memcmp(key, name, len) == 0;
}

/* Marks `bit` seen; -1 when it already was (a repeated key is not a reply of ours). */
static int first(struct reply *r, unsigned bit) {
    if (r->seen & bit)
        return -1;
    r->seen |= bit;
    return 0;
}

static int b64_member(struct json *j, char **data, long *len) {
    size_t n;
    if (json_string_value(j, data, &n) < 0)
        return -1;
    *len = b64_decode(*data, n, *data);
    return *len < 0 ? -1 : 0;
}

static int result_member(struct json *j, const char *key, size_t len, void *ctx) {
    struct reply *r = ctx;
    if (is_key(key, len, "exit"))
        return first(r, SEEN_EXIT) < 0 ? -1 : json_small_uint(j, 255, &r->exit);
    if (is_key(key, len, "stdout"))
        return first(r, SEEN_STDOUT) < 0 ? -1 : b64_member(j, &r->out, &r->out_len);
    if (is_key(key, len, "stderr"))
        return first(r, SEEN_STDERR) < 0 ? -1 : b64_member(j, &r->err, &r->err_len);
    return json_skip(j);
}

static int reply_member(struct json *j, const char *key, size_t len, void *ctx) {
    struct reply *r = ctx;
    if (is_key(key, len, "v"))
        return first(r, SEEN_V) < 0 ? -1 : json_small_uint(j, 255, &r->v);
    if (is_key(key, len, "ok"))  /* false: an error reply, e.g. UnknownMethod */
        return first(r, SEEN_OK) < 0 ? -1 : json_literal(j, "true");
    if (is_key(key, len, "result"))
        return first(r, SEEN_RESULT) < 0 ? -1 : json_object(j, result_member, r);
    return json_skip(j);
}

/* Parse the reply line [line, line + len) in place; 0 when it is a whole ExecCNI result. */
static int parse_reply(char *line, size_t len, struct reply *r) {
    struct json j = {line, line + len, 0};
    memset(r, 0, sizeof *r);
    if (json_object(&j, reply_member, r) < 0)
        return -1;
    json_ws(&j);
    if (j.p != j.end || r->seen != SEEN_ALL)
        return -1;
    return r->v == 1 ? 0 : -1;
}

/* ---- the fast path: one ExecCNI request to the daemon, within a deadline ---------------- */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(long long deadline) {
    long long left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Wait until fd is ready for `events`: 0, or FAST_TIMEOUT when the deadline passed, or -1. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        int left = remaining_ms(deadline);
        if (left == 0)
            return FAST_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 0;
    }
}

static int send_all(int fd, const char *p, size_t n, long long deadline) {
    while (n > 0) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (w < 0)
            return -1;  /* e.g. the daemon hung up: the fallback */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Receive through the first newline; its offset, or -1 (hang-up, error, a line longer than
 * MAX_REPLY) or FAST_TIMEOUT. */
static long recv_line(int fd, struct buf *b, long long deadline) {
    for (;;) {
        if (buf_reserve(b, 65536) < 0)
            return -1;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
        ssize_t n = recv(fd, b->data + b->len, b->cap - b->len - 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return -1;
        char *nl = memchr(b->data + b->len, '\n', (size_t)n);
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        if (nl)
            return nl - b->data <= MAX_REPLY ? nl - b->data : -1;
        if (b->len > MAX_REPLY)
            return -1;
    }
}

static int build_request(struct buf *req, const struct buf *stdin_buf) {
    struct buf env = {0};
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CNI_", 4) == 0 && buf_put(&env, *e, strlen(*e) + 1) < 0)
            break;
    int rc = env.oom ||
             buf_str(req, "{\"v\":1,\"method\":\"ExecCNI\",\"params\":{\"env\":\"") < 0 ||
             b64_put(req, (const unsigned char *)env.data, env.len) < 0 ||
             buf_str(req, "\",\"stdin\":\"") < 0 ||
             b64_put(req, (const unsigned char *)stdin_buf->data, stdin_buf->len) < 0 ||
             buf_str(req, "\"}}\n") < 0;
    free(env.data);
    return rc ? -1 : 0;
}

/* A connected, non-blocking socket; -1 when the connect failed at once, FAST_TIMEOUT when it
 * waited (a full listen backlog) until the deadline. */
static int connect_daemon(const char *path, long long deadline) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof addr.sun_path)
        return -1;
    memcpy(addr.sun_path, path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int left = remaining_ms(deadline);  /* a unix connect waits for the backlog this long */
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = left % 1000 * 1000};
    int rc = left > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 ? 0 : -1;
    while (rc == 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EINTR)
            continue;
        rc = errno == EAGAIN || errno == EINPROGRESS ? FAST_TIMEOUT : -1;
    }
    if (left == 0)
        rc = FAST_TIMEOUT;
    if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        rc = -1;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Ask the daemon to run the plugin; on success write its output and return its exit code.
 * FAST_FALLBACK: nothing was written, take the fallback. FAST_TIMEOUT: the deadline passed. */
static int fast_path(const struct buf *stdin_buf, const char *socket_path, long timeout) {
    long long deadline = now_ms() + timeout * 1000;
    int fd = connect_daemon(socket_path, deadline);
    if (fd < 0)
        return fd == FAST_TIMEOUT ? FAST_TIMEOUT : FAST_FALLBACK;
    struct buf req = {0}, reply = {0};
    struct reply r;
    int rc = build_request(&req, stdin_buf);
    if (rc == 0)
        rc = send_all(fd, req.data, req.len, deadline);
    long line = rc == 0 ? recv_line(fd, &reply, deadline) : rc;
    close(fd);
    int code = line == FAST_TIMEOUT ? FAST_TIMEOUT : FAST_FALLBACK;
    /* decode everything before writing anything: a half-written answer could not be taken back */
    if (line >= 0 && parse_reply(reply.data, (size_t)line, &r) == 0) {
        write_all(STDOUT_FILENO, r.out, (size_t)r.out_len);
        write_all(STDERR_FILENO, r.err, (size_t)r.err_len);
        code = (int)r.exit;
    }
    free(req.data);
    free(reply.data);
    return code;
}

/* ---- this program's own CNI errors ------------------------------------------------------ */

/* A JSON string of `s`; bytes that are not well-formed UTF-8 become U+FFFD. */
static void json_string(struct buf *b, const char *s) {
    buf_str(b, "\"");
    size_t avail = strlen(s);
    while (avail > 0) {
        unsigned char c = (unsigned char)*s;
        size_t n = utf8_len((const unsigned char *)s, avail);
        char esc[8];
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
            buf_str(b, esc);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_str(b, esc);
        } else if (n == 0) {
            buf_str(b, "\\ufffd");
            n = 1;
        } else {
            buf_put(b, s, n);
        }
        s += n;
        avail -= n;
    }
    buf_str(b, "\"");
}

/* Print a CNI error (the netconf's cniVersion when it can be guessed) and its message on
 * stderr; returns the exit code, 1. */
static int cni_error(const struct buf *stdin_buf, int code, const char *msg) {
    char version[32];
    const char *v = stdin_buf->data
                        ? netconf_string(stdin_buf->data, "cniVersion", version, sizeof version)
                        : NULL;
    struct buf out = {0};
    char num[32];
    snprintf(num, sizeof num, ", \"code\": %d, \"msg\": ", code);
    buf_str(&out, "{\"cniVersion\": ");
    json_string(&out, v ? v : "1.0.0");
    buf_str(&out, num);
    json_string(&out, msg);
    buf_str(&out, ", \"details\": \"\"}\n");
    if (out.oom) {
        static const char oom[] = "{\"cniVersion\": \"1.0.0\", \"code\": 11, "
                                  "\"msg\": \"terway: out of memory\", \"details\": \"\"}\n";
        write_all(STDOUT_FILENO, oom, sizeof oom - 1);
    } else {
        write_all(STDOUT_FILENO, out.data, out.len);
    }
    fprintf(stderr, "%s\n", msg);
    free(out.data);
    return 1;
}

/* The CNI error a runtime gets when neither the daemon nor the Python plugin can answer. */
static int fail(const struct buf *stdin_buf, const char *fallback, const char *why) {
    char msg[PATH_MAX + 256];
    snprintf(msg, sizeof msg,
             "terway: the daemon did not answer and the Python plugin %s cannot run: %s",
             fallback, why);
    return cni_error(stdin_buf, TRY_AGAIN_LATER, msg);
}

/* ---- the fallback: the Python plugin, with the stdin already read ----------------------- */

/* Exec the Python plugin beside this executable: with the stdin read (from a memfd), or, when
 * it could not be read (`have_stdin` 0), with stdin as it is, so it reports the error itself. */
static int run_fallback(int argc, char **argv, const struct buf *stdin_buf, int have_stdin) {
    char self[PATH_MAX], fallback[PATH_MAX + sizeof FALLBACK_SUFFIX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return fail(stdin_buf, "(terway-python)", strerror(errno));
    self[n] = '\0';
    snprintf(fallback, sizeof fallback, "%s%s", self, FALLBACK_SUFFIX);
    if (have_stdin) {
        int fd = memfd_create("terway-stdin", MFD_CLOEXEC);
        if (fd < 0 || write_all(fd, stdin_buf->data, stdin_buf->len) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, STDIN_FILENO) < 0)
            return fail(stdin_buf, fallback, strerror(errno));
    }
    char *none[] = {fallback, NULL};  /* argc 0 (an exec with no argv) is possible */
    if (argc > 0)
        argv[0] = fallback;
    execv(fallback, argc > 0 ? argv : none);
    return fail(stdin_buf, fallback, strerror(errno));
}

/* Closed standard descriptors become /dev/null, so that no socket or memfd of ours takes
 * their number (the plugin's output must never land in the daemon's socket). */
static void open_std_fds(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null >= 0 && null != fd) {
            dup2(null, fd);
            close(null);
        }
    }
}

int main(int argc, char **argv) {
    open_std_fds();
    struct buf stdin_buf = {0};
    int code = FAST_FALLBACK;
    if (read_all(STDIN_FILENO, &stdin_buf, SIZE_MAX / 8) < 0) {
        code = stdin_buf.oom ? fail(&stdin_buf, "(terway-python)", "out of memory")
                             : run_fallback(argc, argv, &stdin_buf, 0);
        free(stdin_buf.data);
        return code;
    }
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    const char *socket_path =
        netconf_string(stdin_buf.data, "daemon_socket", path, sizeof path);
    socket_path = socket_path ? socket_path : DEFAULT_SOCKET;
    long timeout = netconf_int(stdin_buf.data, "rpc_timeout", MIN_TIMEOUT, MAX_TIMEOUT,
                               DEFAULT_TIMEOUT);
    if (stdin_buf.len <= MAX_FAST_STDIN)
        code = fast_path(&stdin_buf, socket_path, timeout);
    if (code == FAST_TIMEOUT) {
        char msg[sizeof path + 128];
        snprintf(msg, sizeof msg, "terway: no reply from the terway daemon at %s within %lds",
                 socket_path, timeout);
        code = cni_error(&stdin_buf, DAEMON_TIMEOUT, msg);
    } else if (code == FAST_FALLBACK) {
        code = run_fallback(argc, argv, &stdin_buf, 1);
    }
    free(stdin_buf.data);
    return code;
}
