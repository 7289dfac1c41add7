/* Streams a 10 MB body through on_body_chunk (checked on the fly, never held whole), then
 * aborts a body mid-way by returning non-zero, and checks the engine still serves. */
#include "common.h"

typedef struct checker {
    int status;
    size_t total, chunks, max_chunk, abort_after;
    int corrupt;
} checker;

static int on_head(void *userdata, const fephp_response *resp) {
    ((checker *)userdata)->status = fephp_response_status(resp);
    return 0;
}

static int on_chunk(void *userdata, const uint8_t *data, size_t len) {
    static const char pattern[] = "0123456789abcdef";
    checker *c = userdata;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != (uint8_t)pattern[(c->total + i) % 16]) c->corrupt = 1;
    }
    c->total += len;
    c->chunks++;
    if (len > c->max_chunk) c->max_chunk = len;
    return c->abort_after && c->chunks >= c->abort_after;
}

static const fephp_write_callbacks CALLBACKS = {on_head, on_chunk};

int main(int argc, char **argv) {
    CHECK(argc == 3);
    fephp_engine *engine = fpm_engine(argv[1], argv[2]);

    checker c = {0};
    fephp_response *resp = NULL;
    CHECK_OK(fephp_execute(engine, request("GET", "/big_output.php?mb=10"), &CALLBACKS, &c, &resp));
    CHECK(c.status == 200 && fephp_response_status(resp) == 200);
    CHECK(c.total == 10u * 1024 * 1024);
    CHECK(!c.corrupt);
    CHECK(c.chunks > 10); /* streamed, not buffered into one piece */
    printf("stream: %zu bytes in %zu chunks (largest %zu)\n", c.total, c.chunks, c.max_chunk);
    fephp_response_free(resp);

    checker a = {0};
    a.abort_after = 2;
    fephp_response *untouched = (fephp_response *)0x1;
    CHECK_RESULT(fephp_execute(engine, request("GET", "/big_output.php?mb=10"), &CALLBACKS, &a, &untouched),
                 FEPHP_ERR_ABORTED);
    CHECK(untouched == (fephp_response *)0x1);
    CHECK(a.chunks == 2);
    CHECK(strstr(last_error(), "on_body_chunk") != NULL);

    /* the aborted connection is not reused; the engine keeps serving */
    for (int i = 0; i < 3; i++) {
        sink s;
        resp = execute(engine, request("GET", "/hello.php"), &s);
        CHECK(fephp_response_status(resp) == 200 && strcmp(s.data, "Hello, world!\n") == 0);
        fephp_response_free(resp);
        sink_free(&s);
    }
    fephp_engine_free(engine);
    printf("stream: ok\n");
    return 0;
}
