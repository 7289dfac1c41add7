/* Shared helpers of the C API tests (tests/c/), compiled against the INSTALLED fephp.h.
 * Every program takes: argv[1] = PHP-FPM address ("unix:/path" or "host:port"),
 * argv[2] = the test scripts directory (tests/scripts). Exit status 0 = pass. */
#ifndef FEPHP_TEST_COMMON_H
#define FEPHP_TEST_COMMON_H

#include <fephp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This thread's fephp_last_error, in a static buffer. */
const char *last_error(void);

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s (fephp_last_error: %s)\n", __FILE__, \
                    __LINE__, #cond, last_error());                                       \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

#define CHECK_RESULT(call, expected)                                                          \
    do {                                                                                      \
        fephp_result r_ = (call);                                                             \
        if (r_ != (expected)) {                                                               \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d (fephp_last_error: %s)\n",    \
                    __FILE__, __LINE__, #call, (int)r_, (int)(expected), last_error());       \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define CHECK_OK(call) CHECK_RESULT(call, FEPHP_OK)

/* Collects a response: the status seen by on_head and the whole body. */
typedef struct sink {
    int status;
    int heads;
    size_t chunks;
    char *data;
    size_t len, cap;
} sink;

int sink_on_head(void *userdata, const fephp_response *resp);
int sink_on_body_chunk(void *userdata, const uint8_t *data, size_t len);
extern const fephp_write_callbacks SINK_CALLBACKS;
void sink_free(sink *s);

/* A TOML config serving `docroot` through PHP-FPM at `fpm` (caller frees). */
char *fpm_toml(const char *fpm, const char *docroot);
/* An engine for that config (exits on failure). */
fephp_engine *fpm_engine(const char *fpm, const char *docroot);
/* A new request (exits on failure). */
fephp_request *request(const char *method, const char *uri);
void add_header(fephp_request *req, const char *name, const char *value);
/* Executes `req` into `s` (zeroed first) and returns the response (exits on failure). */
fephp_response *execute(fephp_engine *engine, fephp_request *req, sink *s);
/* Copies the value of the first header named `name` (case-insensitive) into buf; 0 if absent. */
int header_value(const fephp_response *resp, const char *name, char *buf, size_t len);
/* Counts the headers named `name`. */
size_t header_count(const fephp_response *resp, const char *name);
/* POSTs bodies of many sizes, each appended in pieces (fephp_request_append_body), to
 * body_echo.php and checks PHP read every byte, raw and as a form field (exits on failure). */
void check_body_in_pieces(fephp_engine *engine);

#endif
