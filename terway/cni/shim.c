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
 * ExecCNI, a reply not understood, input too large) it executes the Python plugin installed
 * next to it ("<this executable>-python") with the same argv, environment and stdin, so every
 * answer - including every error - is still the Python plugin's. Both are safe to run twice:
 * the daemon answers a repeated ADD for one sandbox with the same address and refuses a
 * concurrent one (RequestInFlight). Only if that fallback cannot run either does this program
 * write its own CNI error.
 *
 * Build: cc -O2 -static -o terway shim.c  (terway/cni/native.py does this).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FAST_STDIN (512 << 10)    /* base64 of it fits the daemon's 1 MiB line limit */
#define MAX_REPLY (4 << 20)
#define DEFAULT_SOCKET "/var/run/eni/eni.socket"
#define FALLBACK_SUFFIX "-python"
#define TRY_AGAIN_LATER 11            /* CNI error code: the runtime retries */

extern char **environ;

struct buf {
    char *data;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return -1;
    b->data = data;
    b->cap = cap;
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

/* Read fd to EOF, or (stop_at_newline) through the first newline; -1 on error or past
 * `limit` bytes. The buffer is always allocated and NUL-terminated on success. */
static int read_all(int fd, struct buf *b, size_t limit, int stop_at_newline) {
    for (;;) {
        if (buf_reserve(b, 65536) < 0)
            return -1;
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        b->data[b->len + (size_t)n] = '\0';
        if (n == 0)
            return 0;
        int done = stop_at_newline && memchr(b->data + b->len, '\n', (size_t)n);
        b->len += (size_t)n;
        if (b->len > limit)
            return -1;
        if (done)
            return 0;
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);  /* never die of SIGPIPE mid-request */
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

/* Decode `n` base64 chars in place into `out` (which may alias `s`); its length, or -1. */
static long b64_decode(const char *s, size_t n, char *out) {
    if (n % 4)
        return -1;
    long len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' && i + 4 == n && k >= 2 ? 0 : b64_value(s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | v[3];
        out[len++] = (char)(w >> 16);
        if (s[i + 2] != '=')
            out[len++] = (char)(w >> 8 & 255);
        if (s[i + 3] != '=')
            out[len++] = (char)(w & 255);
    }
    return len;
}

/* ---- the netconf, read only as far as a guess needs ------------------------------------ */

/* The string value of "key" when it occurs exactly once with a plain (escape-free) string
 * value; else NULL. Only a guess: the daemon re-reads the netconf with the real parser, and
 * talks to the daemon the netconf names if that is not itself. */
static char *netconf_string(const char *conf, const char *key, char *out, size_t size) {
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
    if (*p++ != '"')
        return NULL;
    size_t n = strcspn(p, "\"\\");
    if (p[n] != '"' || n == 0 || n >= size)
        return NULL;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

/* ---- the fast path: one ExecCNI request to the daemon ---------------------------------- */

static int build_request(struct buf *req, const struct buf *stdin_buf) {
    struct buf env = {0};
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CNI_", 4) == 0 && buf_put(&env, *e, strlen(*e) + 1) < 0)
            return -1;
    int rc = buf_str(req, "{\"v\":1,\"method\":\"ExecCNI\",\"params\":{\"env\":\"") < 0 ||
             b64_put(req, (const unsigned char *)env.data, env.len) < 0 ||
             buf_str(req, "\",\"stdin\":\"") < 0 ||
             b64_put(req, (const unsigned char *)stdin_buf->data, stdin_buf->len) < 0 ||
             buf_str(req, "\"}}\n") < 0;
    free(env.data);
    return rc ? -1 : 0;
}

static int connect_daemon(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return -1;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The base64 field "name" of the reply's result, decoded in place; its length or -1. */
static long reply_field(char *result, const char *name, char **out) {
    char key[32];
    snprintf(key, sizeof key, "\"%s\":\"", name);
    char *at = strstr(result, key);
    if (!at)
        return -1;
    char *start = at + strlen(key);
    char *end = strchr(start, '"');
    if (!end)
        return -1;
    *out = start;
    return b64_decode(start, (size_t)(end - start), start);
}

/* Ask the daemon to run the plugin; on success write its output and return its exit code.
 * -1: nothing was written, take the fallback. */
static int fast_path(const struct buf *stdin_buf) {
    char path[108];
    const char *socket_path = netconf_string(stdin_buf->data, "daemon_socket", path, sizeof path);
    int fd = connect_daemon(socket_path ? socket_path : DEFAULT_SOCKET);
    if (fd < 0)
        return -1;
    struct buf req = {0}, reply = {0};
    int code = -1;
    if (build_request(&req, stdin_buf) < 0 || write_all(fd, req.data, req.len) < 0 ||
        read_all(fd, &reply, MAX_REPLY, 1) < 0)
        goto out;
    static const char ok[] = "{\"v\":1,\"ok\":true,\"result\":{";
    if (strncmp(reply.data, ok, sizeof ok - 1) != 0)
        goto out;  /* e.g. UnknownMethod from a daemon older than this plugin */
    char *result = reply.data + sizeof ok - 1;
    char *exit_at = strstr(result, "\"exit\":");
    char *out_data = NULL, *err_data = NULL;
    if (!exit_at)
        goto out;
    char *digits = exit_at + 7, *after = NULL;
    long exit_code = strtol(digits, &after, 10);
    if (after == digits || exit_code < 0 || exit_code > 255)
        goto out;
    /* decode both before writing either: a half-written answer could not be taken back */
    long out_len = reply_field(result, "stdout", &out_data);
    long err_len = reply_field(result, "stderr", &err_data);
    if (out_len < 0 || err_len < 0)
        goto out;
    write_all(STDOUT_FILENO, out_data, (size_t)out_len);
    write_all(STDERR_FILENO, err_data, (size_t)err_len);
    code = (int)exit_code;
out:
    close(fd);
    free(req.data);
    free(reply.data);
    return code;
}

/* ---- the fallback: the Python plugin, with the stdin already read ----------------------- */

static void json_string(struct buf *b, const char *s) {
    buf_str(b, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            snprintf(esc, sizeof esc, "\\%c", *s);
            buf_str(b, esc);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s);
            buf_str(b, esc);
        } else {
            buf_put(b, s, 1);
        }
    }
    buf_str(b, "\"");
}

/* The CNI error a runtime gets when neither the daemon nor the Python plugin can answer. */
static int fail(const struct buf *stdin_buf, const char *fallback, const char *why) {
    char version[32];
    const char *v = stdin_buf->data
                        ? netconf_string(stdin_buf->data, "cniVersion", version, sizeof version)
                        : NULL;
    char msg[PATH_MAX + 256];
    snprintf(msg, sizeof msg,
             "terway: the daemon did not answer and the Python plugin %s cannot run: %s",
             fallback, why);
    struct buf out = {0};
    buf_str(&out, "{\"cniVersion\": ");
    json_string(&out, v ? v : "1.0.0");
    char code[32];
    snprintf(code, sizeof code, ", \"code\": %d, \"msg\": ", TRY_AGAIN_LATER);
    buf_str(&out, code);
    json_string(&out, msg);
    buf_str(&out, ", \"details\": \"\"}\n");
    if (out.data)
        write_all(STDOUT_FILENO, out.data, out.len);
    fprintf(stderr, "%s\n", msg);
    return 1;
}

static int run_fallback(char **argv, const struct buf *stdin_buf) {
    char self[PATH_MAX], fallback[PATH_MAX + sizeof FALLBACK_SUFFIX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return fail(stdin_buf, "(terway-python)", strerror(errno));
    self[n] = '\0';
    snprintf(fallback, sizeof fallback, "%s%s", self, FALLBACK_SUFFIX);
    int fd = memfd_create("terway-stdin", MFD_CLOEXEC);
    if (fd < 0 || write_all(fd, stdin_buf->data, stdin_buf->len) < 0 ||
        lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, STDIN_FILENO) < 0)
        return fail(stdin_buf, fallback, strerror(errno));
    argv[0] = fallback;
    execv(fallback, argv);
    return fail(stdin_buf, fallback, strerror(errno));
}

int main(int argc, char **argv) {
    (void)argc;
    struct buf stdin_buf = {0};
    if (read_all(STDIN_FILENO, &stdin_buf, SIZE_MAX / 2, 0) < 0 && !stdin_buf.data)
        return fail(&stdin_buf, "(terway-python)", "out of memory");
    if (stdin_buf.len <= MAX_FAST_STDIN) {
        int code = fast_path(&stdin_buf);
        if (code >= 0)
            return code;
    }
    return run_fallback(argv, &stdin_buf);
}
