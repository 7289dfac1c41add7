/* Helpers shared by the C API tests; see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <strings.h>

const char *last_error(void) {
    static __thread char buf[1024];
    fephp_last_error(buf, sizeof buf);
    return buf;
}

int sink_on_head(void *userdata, const fephp_response *resp) {
    sink *s = userdata;
    s->status = fephp_response_status(resp);
    s->heads++;
    return 0;
}

int sink_on_body_chunk(void *userdata, const uint8_t *data, size_t len) {
    sink *s = userdata;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len + 1) cap *= 2;
        char *grown = realloc(s->data, cap);
        if (!grown) return 1;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = '\0';
    s->chunks++;
    return 0;
}

const fephp_write_callbacks SINK_CALLBACKS = {sink_on_head, sink_on_body_chunk};

void sink_free(sink *s) {
    free(s->data);
    memset(s, 0, sizeof *s);
}

char *fpm_toml(const char *fpm, const char *docroot) {
    char *toml = NULL;
    int n = asprintf(&toml,
                     "[server]\ndocument_root = \"%s\"\n\n[php]\nuse_fpm = true\n"
                     "fpm_socket = \"%s\"\nworker_pool_size = 4\n",
                     docroot, fpm);
    CHECK(n > 0);
    return toml;
}

fephp_engine *fpm_engine(const char *fpm, const char *docroot) {
    char *toml = fpm_toml(fpm, docroot);
    fephp_engine *engine = NULL;
    CHECK_OK(fephp_engine_new_from_toml(toml, strlen(toml), &engine));
    free(toml);
    CHECK(engine != NULL);
    return engine;
}

fephp_request *request(const char *method, const char *uri) {
    fephp_request *req = NULL;
    CHECK_OK(fephp_request_new(method, uri, &req));
    CHECK(req != NULL);
    return req;
}

void add_header(fephp_request *req, const char *name, const char *value) {
    CHECK_OK(fephp_request_add_header(req, (const uint8_t *)name, strlen(name), (const uint8_t *)value,
                                      strlen(value)));
}

fephp_response *execute(fephp_engine *engine, fephp_request *req, sink *s) {
    memset(s, 0, sizeof *s);
    fephp_response *resp = NULL;
    CHECK_OK(fephp_execute(engine, req, &SINK_CALLBACKS, s, &resp));
    CHECK(resp != NULL);
    CHECK(s->heads == 1);
    CHECK(s->status == fephp_response_status(resp));
    return resp;
}

int header_value(const fephp_response *resp, const char *name, char *buf, size_t len) {
    size_t n = fephp_response_header_count(resp);
    for (size_t i = 0; i < n; i++) {
        const char *hn, *hv;
        size_t hn_len, hv_len;
        CHECK_OK(fephp_response_header_at(resp, i, &hn, &hn_len, &hv, &hv_len));
        if (hn_len == strlen(name) && strncasecmp(hn, name, hn_len) == 0) {
            size_t copy = hv_len < len - 1 ? hv_len : len - 1;
            memcpy(buf, hv, copy);
            buf[copy] = '\0';
            return 1;
        }
    }
    return 0;
}

size_t header_count(const fephp_response *resp, const char *name) {
    size_t n = fephp_response_header_count(resp), count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *hn, *hv;
        size_t hn_len, hv_len;
        CHECK_OK(fephp_response_header_at(resp, i, &hn, &hn_len, &hv, &hv_len));
        if (hn_len == strlen(name) && strncasecmp(hn, name, hn_len) == 0) count++;
    }
    return count;
}

/* One body of `len` bytes POSTed in pieces (sizes cycling through `cuts`), as form field `a`
 * (urlencoded) or raw: the echo must be every byte, in order. */
static void body_in_pieces(fephp_engine *engine, size_t len, int form) {
    const size_t cuts[] = {860, 1, 7, 4096, 3000};
    const size_t head = form ? 2 : 0;
    char *body = malloc(len + head + 1);
    CHECK(body != NULL);
    memcpy(body, "a=", head);
    for (size_t i = 0; i < len; i++) body[head + i] = (char)(form ? 'a' + i % 26 : (i * 7 + 3) % 256);
    fephp_request *req = request("POST", "/body_echo.php");
    add_header(req, "Content-Type", form ? "application/x-www-form-urlencoded" : "application/octet-stream");
    size_t off = 0, k = 0;
    while (off < len + head) {
        size_t n = cuts[k++ % (sizeof cuts / sizeof *cuts)];
        if (n > len + head - off) n = len + head - off;
        CHECK_OK(fephp_request_append_body(req, (const uint8_t *)body + off, n));
        off += n;
    }
    sink s;
    fephp_response *resp = execute(engine, req, &s);
    if (fephp_response_status(resp) != 200) {
        fprintf(stderr, "body of %zu bytes (%s) in pieces: status %d, body: %.*s\n", len, form ? "form" : "raw",
                (int)fephp_response_status(resp), (int)(s.len < 400 ? s.len : 400), s.data ? s.data : "");
        exit(1);
    }
    if (s.len != len || memcmp(s.data, body + head, len) != 0) {
        fprintf(stderr, "body of %zu bytes (%s) in pieces: PHP read %zu bytes\n", len, form ? "form" : "raw", s.len);
        exit(1);
    }
    fephp_response_free(resp);
    sink_free(&s);
    free(body);
}

void check_body_in_pieces(fephp_engine *engine) {
    const size_t sizes[] = {0, 1, 863, 3000, 4097, 16383, 16384, 16385, 70000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        body_in_pieces(engine, sizes[i], 0);
        body_in_pieces(engine, sizes[i], 1);
    }
}
