/* Hello world, POST body (also appended in pieces), request headers reaching $_SERVER, response headers, an engine from
 * a config file: the blocking API against a real php-fpm. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

static void hello(fephp_engine *engine) {
    sink s;
    fephp_response *resp = execute(engine, request("GET", "/hello.php"), &s);
    CHECK(fephp_response_status(resp) == 200);
    CHECK(s.len == 14 && strcmp(s.data, "Hello, world!\n") == 0);
    char ct[128];
    CHECK(header_value(resp, "Content-Type", ct, sizeof ct));
    CHECK(strcmp(ct, "text/html; charset=UTF-8") == 0);
    char err[8] = "x";
    CHECK(fephp_response_error(resp, err, sizeof err) == 0 && err[0] == '\0');
    fephp_response_free(resp);
    sink_free(&s);
}

static void post_body(fephp_engine *engine) {
    fephp_request *req = request("POST", "/echo_request.php?a=1");
    add_header(req, "Content-Type", "application/x-www-form-urlencoded");
    const char *body = "name=Alice&n=42";
    CHECK_OK(fephp_request_set_body(req, (const uint8_t *)body, strlen(body)));
    sink s;
    fephp_response *resp = execute(engine, req, &s);
    CHECK(fephp_response_status(resp) == 200);
    CHECK(strstr(s.data, "\"post\":{\"name\":\"Alice\",\"n\":\"42\"}") != NULL);
    CHECK(strstr(s.data, "\"get\":{\"a\":\"1\"}") != NULL);
    CHECK(strstr(s.data, "\"input_len\":15") != NULL);
    fephp_response_free(resp);
    sink_free(&s);
}

static void request_headers(fephp_engine *engine) {
    fephp_request *req = request("GET", "/server_vars.php?q=1");
    add_header(req, "Host", "example.org:8080");
    add_header(req, "X-Custom", "hello");
    CHECK_OK(fephp_request_set_remote_addr(req, "203.0.113.7:51234"));
    CHECK_OK(fephp_request_set_local_addr(req, "127.0.0.1:8080"));
    CHECK_OK(fephp_request_set_https(req, true));
    sink s;
    fephp_response *resp = execute(engine, req, &s);
    CHECK(fephp_response_status(resp) == 200);
    const char *expect[] = {
        "\"REQUEST_METHOD\":\"GET\"", "\"QUERY_STRING\":\"q=1\"", "\"HTTP_X_CUSTOM\":\"hello\"",
        "\"HTTP_HOST\":\"example.org:8080\"", "\"SERVER_NAME\":\"example.org\"", "\"REMOTE_ADDR\":\"203.0.113.7\"",
        "\"REMOTE_PORT\":\"51234\"", "\"SERVER_PORT\":\"8080\"", "\"HTTPS\":\"on\"", "\"REQUEST_SCHEME\":\"https\"",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        if (!strstr(s.data, expect[i])) {
            fprintf(stderr, "missing %s in %s\n", expect[i], s.data);
            exit(1);
        }
    }
    fephp_response_free(resp);
    sink_free(&s);
}

static void response_headers(fephp_engine *engine) {
    sink s;
    fephp_response *resp = execute(engine, request("GET", "/status_headers.php"), &s);
    CHECK(fephp_response_status(resp) == 418);
    CHECK(strcmp(s.data, "teapot\n") == 0);
    char v[256];
    CHECK(header_value(resp, "X-Custom", v, sizeof v) && strcmp(v, "one") == 0);
    CHECK(header_count(resp, "X-Multi") == 2);
    CHECK(header_count(resp, "Set-Cookie") == 2);
    CHECK(header_count(resp, "Status") == 0);
    fephp_response_free(resp);
    sink_free(&s);
}

static void engine_from_file(const char *fpm, const char *docroot) {
    char path[] = "/tmp/fephp-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char *base = fpm_toml(fpm, docroot), *toml = NULL;
    /* a server_name key inside [server] (fpm_toml starts with that section) */
    CHECK(asprintf(&toml, "[server]\nserver_name = \"example.org\"\n%s", base + strlen("[server]\n")) > 0);
    free(base);
    CHECK(write(fd, toml, strlen(toml)) == (ssize_t)strlen(toml));
    close(fd);
    free(toml);
    fephp_engine *engine = NULL;
    CHECK_OK(fephp_engine_new_from_file(path, &engine));
    unlink(path);
    hello(engine);
    /* server.server_name is SERVER_NAME whatever Host the client sent */
    fephp_request *req = request("GET", "/server_vars.php");
    add_header(req, "Host", "evil.test");
    sink s;
    fephp_response *resp = execute(engine, req, &s);
    CHECK(strstr(s.data, "\"SERVER_NAME\":\"example.org\"") != NULL);
    CHECK(strstr(s.data, "\"HTTP_HOST\":\"evil.test\"") != NULL);
    fephp_response_free(resp);
    sink_free(&s);
    fephp_engine_free(engine);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    CHECK(strlen(fephp_version()) > 0);
    fephp_engine *engine = fpm_engine(argv[1], argv[2]);
    for (int i = 0; i < 3; i++) hello(engine); /* pooled connections are reused */
    post_body(engine);
    check_body_in_pieces(engine);
    request_headers(engine);
    response_headers(engine);
    fephp_engine_free(engine);
    engine_from_file(argv[1], argv[2]);
    printf("hello: ok (fe-php %s)\n", fephp_version());
    return 0;
}
