/* Every error path of the C API: NULL arguments, invalid UTF-8, bad config (the message names
 * the key), malformed arguments, out-of-range header index, last-error truncation, and the
 * request outcomes that are still responses (FPM down -> 502, missing script -> 404). */
#include "common.h"

static fephp_result cfg(const char *toml) {
    fephp_engine *engine = (fephp_engine *)0x1; /* must stay untouched on error */
    fephp_result r = fephp_engine_new_from_toml(toml, strlen(toml), &engine);
    CHECK(r != FEPHP_OK);
    CHECK(engine == (fephp_engine *)0x1);
    return r;
}

static void expect_message(const char *needle) {
    if (!strstr(last_error(), needle)) {
        fprintf(stderr, "last error %s lacks %s\n", last_error(), needle);
        exit(1);
    }
}

static void null_arguments(void) {
    fephp_engine *engine = NULL;
    fephp_request *req = NULL;
    CHECK_RESULT(fephp_engine_new_from_toml("x", 1, NULL), FEPHP_ERR_NULL_ARGUMENT);
    expect_message("`out` must not be NULL");
    CHECK_RESULT(fephp_engine_new_from_toml(NULL, 5, &engine), FEPHP_ERR_NULL_ARGUMENT);
    expect_message("`toml`");
    CHECK_RESULT(fephp_engine_new_from_file(NULL, &engine), FEPHP_ERR_NULL_ARGUMENT);
    CHECK(engine == NULL);
    CHECK_RESULT(fephp_request_new(NULL, "/", &req), FEPHP_ERR_NULL_ARGUMENT);
    expect_message("fephp_request_new: argument `method` must not be NULL");
    CHECK_RESULT(fephp_request_new("GET", NULL, &req), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_request_new("GET", "/", NULL), FEPHP_ERR_NULL_ARGUMENT);
    CHECK(req == NULL);
    CHECK_RESULT(fephp_request_add_header(NULL, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1),
                 FEPHP_ERR_NULL_ARGUMENT);
    req = request("GET", "/");
    CHECK_RESULT(fephp_request_add_header(req, NULL, 1, (const uint8_t *)"b", 1), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_request_add_header(req, (const uint8_t *)"a", 1, NULL, 3), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_OK(fephp_request_add_header(req, (const uint8_t *)"X-Empty", 7, NULL, 0)); /* NULL ok at len 0 */
    CHECK_RESULT(fephp_request_set_body(NULL, (const uint8_t *)"x", 1), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_request_set_body(req, NULL, 10), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_OK(fephp_request_set_body(req, NULL, 0));
    CHECK_RESULT(fephp_request_set_remote_addr(req, NULL), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_request_set_local_addr(NULL, "1.2.3.4:5"), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_request_set_https(NULL, true), FEPHP_ERR_NULL_ARGUMENT);
    /* execute with a NULL engine still consumes the request (valgrind checks it is freed) */
    CHECK_RESULT(fephp_execute(NULL, req, NULL, NULL, NULL), FEPHP_ERR_NULL_ARGUMENT);
    expect_message("`engine`");
    CHECK_RESULT(fephp_execute(NULL, NULL, NULL, NULL, NULL), FEPHP_ERR_NULL_ARGUMENT);
    expect_message("`req`");
    CHECK_RESULT(fephp_execute_async(NULL, request("GET", "/"), NULL, NULL, NULL), FEPHP_ERR_NULL_ARGUMENT);
    CHECK_RESULT(fephp_execute_async(NULL, NULL, NULL, NULL, NULL), FEPHP_ERR_NULL_ARGUMENT);
    /* getters and free functions accept NULL */
    CHECK(fephp_response_status(NULL) == 0);
    CHECK(fephp_response_header_count(NULL) == 0);
    const char *n, *v;
    size_t nl, vl;
    CHECK_RESULT(fephp_response_header_at(NULL, 0, &n, &nl, &v, &vl), FEPHP_ERR_NULL_ARGUMENT);
    CHECK(fephp_response_error(NULL, NULL, 0) == 0);
    fephp_response_free(NULL);
    fephp_request_free(NULL);
    fephp_engine_free(NULL);
}

static void invalid_utf8(const char *fpm, const char *docroot) {
    const char bad_toml[] = "[server]\ndocument_root = \"\xff\"\n";
    CHECK(cfg(bad_toml) == FEPHP_ERR_INVALID_UTF8);
    expect_message("`toml` is not UTF-8");
    fephp_request *req = NULL;
    CHECK_RESULT(fephp_request_new("GET", "/\xc3\x28.php", &req), FEPHP_ERR_INVALID_UTF8);
    expect_message("`uri` is not UTF-8");
    CHECK_RESULT(fephp_request_new("G\xff", "/", &req), FEPHP_ERR_INVALID_UTF8);
    CHECK(req == NULL);
    req = request("GET", "/");
    CHECK_RESULT(fephp_request_add_header(req, (const uint8_t *)"X-\xff", 3, (const uint8_t *)"v", 1),
                 FEPHP_ERR_INVALID_UTF8);
    CHECK_RESULT(fephp_request_set_remote_addr(req, "\xff:1"), FEPHP_ERR_INVALID_UTF8);
    /* header VALUES are bytes: non-UTF-8 is fine and reaches PHP */
    CHECK_OK(fephp_request_add_header(req, (const uint8_t *)"X-Latin1", 8, (const uint8_t *)"caf\xe9", 4));
    fephp_request_free(req);
    (void)fpm;
    (void)docroot;
}

static void invalid_arguments(void) {
    fephp_request *req = NULL;
    CHECK_RESULT(fephp_request_new("GE T", "/", &req), FEPHP_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(fephp_request_new("GET", "", &req), FEPHP_ERR_INVALID_ARGUMENT);
    req = request("GET", "/");
    CHECK_RESULT(fephp_request_add_header(req, (const uint8_t *)"Bad Name", 8, (const uint8_t *)"v", 1),
                 FEPHP_ERR_INVALID_ARGUMENT);
    CHECK_RESULT(fephp_request_add_header(req, (const uint8_t *)"X-A", 3, (const uint8_t *)"a\r\nX: y", 7),
                 FEPHP_ERR_INVALID_ARGUMENT);
    expect_message("CR, LF or NUL");
    CHECK_RESULT(fephp_request_set_remote_addr(req, "localhost"), FEPHP_ERR_INVALID_ARGUMENT);
    expect_message("not an `ip:port` address");
    CHECK_OK(fephp_request_set_remote_addr(req, "[2001:db8::1]:443"));
    fephp_request_free(req);
}

static void bad_configs(const char *docroot) {
    char toml[512];
    snprintf(toml, sizeof toml, "[server]\ndocument_root = \"%s\"\n[php]\nuse_fpm = true\nworker_pool_size = 0\n", docroot);
    CHECK(cfg(toml) == FEPHP_ERR_CONFIG);
    expect_message("php.worker_pool_size");
    snprintf(toml, sizeof toml, "[server]\ndocument_root = \"%s\"\nlisten_port = 80\n", docroot);
    CHECK(cfg(toml) == FEPHP_ERR_CONFIG);
    expect_message("server.listen_port");
    snprintf(toml, sizeof toml, "[server]\ndocument_root = \"%s\"\n[php]\nuse_fpm = true\nfpm_socket = \"nowhere\"\n", docroot);
    CHECK(cfg(toml) == FEPHP_ERR_CONFIG);
    expect_message("php.fpm_socket");
    CHECK(cfg("[php]\nuse_fpm = true\n") == FEPHP_ERR_CONFIG);
    expect_message("server");
    CHECK(cfg("[server]\ndocument_root = \"/nonexistent/fephp/root\"\n[php]\nuse_fpm = true\n") == FEPHP_ERR_CONFIG);
    expect_message("server.document_root");
    fephp_engine *engine = NULL;
    CHECK_RESULT(fephp_engine_new_from_file("/nonexistent/fephp.toml", &engine), FEPHP_ERR_CONFIG);
    expect_message("/nonexistent/fephp.toml");
    CHECK(engine == NULL);
}

static void last_error_truncates(void) {
    fephp_request *req = NULL;
    CHECK_RESULT(fephp_request_new(NULL, "/", &req), FEPHP_ERR_NULL_ARGUMENT);
    size_t full = fephp_last_error(NULL, 0);
    CHECK(full == strlen("fephp_request_new: argument `method` must not be NULL"));
    char small[8];
    CHECK(fephp_last_error(small, sizeof small) == full);
    CHECK(strcmp(small, "fephp_r") == 0);
}

static void responses_for_failures(const char *docroot) {
    /* FPM down: still a response, 502, with the reason in fephp_response_error */
    fephp_engine *down = fpm_engine("unix:/nonexistent/fephp-fpm.sock", docroot);
    sink s;
    fephp_response *resp = execute(down, request("GET", "/hello.php"), &s);
    CHECK(fephp_response_status(resp) == 502);
    CHECK(strcmp(s.data, "502 Bad Gateway\n") == 0);
    char why[256];
    CHECK(fephp_response_error(resp, why, sizeof why) > 0);
    CHECK(strstr(why, "fephp-fpm.sock") != NULL);
    fephp_response_free(resp);
    sink_free(&s);
    /* out may be NULL: the response is freed by fe-php */
    CHECK_OK(fephp_execute(down, request("GET", "/hello.php"), NULL, NULL, NULL));
    fephp_engine_free(down);
}

static void not_found_and_out_of_range(const char *fpm, const char *docroot) {
    fephp_engine *engine = fpm_engine(fpm, docroot);
    sink s;
    fephp_response *resp = execute(engine, request("GET", "/missing.php"), &s);
    CHECK(fephp_response_status(resp) == 404);
    const char *n = (const char *)0x1, *v;
    size_t nl = 7, vl;
    size_t count = fephp_response_header_count(resp);
    CHECK_RESULT(fephp_response_header_at(resp, count, &n, &nl, &v, &vl), FEPHP_ERR_INVALID_ARGUMENT);
    CHECK(n == (const char *)0x1 && nl == 7); /* out-params untouched on error */
    expect_message("out of range");
    fephp_response_free(resp);
    sink_free(&s);
    /* traversal is refused before PHP */
    resp = execute(engine, request("GET", "/../../etc/passwd"), &s);
    CHECK(fephp_response_status(resp) == 403 || fephp_response_status(resp) == 404 || fephp_response_status(resp) == 400);
    fephp_response_free(resp);
    sink_free(&s);
    fephp_engine_free(engine);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    null_arguments();
    invalid_utf8(argv[1], argv[2]);
    invalid_arguments();
    bad_configs(argv[2]);
    last_error_truncates();
    responses_for_failures(argv[2]);
    not_found_and_out_of_range(argv[1], argv[2]);
    printf("errors: ok\n");
    return 0;
}
