/* An executor pool through the C API (php.executors > 0): PHP runs in executor processes exec'd
 * from the fe-php binary, not in this process; both transports; a body appended in pieces;
 * a config without php.executor_binary refused with
 * FEPHP_ERR_CONFIG naming the key; fephp_engine_free stops the pool. argv[1] is the fe-php
 * binary, argv[2] the scripts dir, argv[3] the php.ini. */
#define _GNU_SOURCE
#include "common.h"

#include <unistd.h>

static void run(const char *transport, const char *fe_php, const char *scripts, const char *ini) {
    char *toml = NULL;
    CHECK(asprintf(&toml,
                   "[server]\ndocument_root = \"%s\"\n\n[php]\nuse_fpm = false\nini_file = \"%s\"\nexecutors = 2\n"
                   "executor_binary = \"%s\"\nexecutor_transport = \"%s\"\n",
                   scripts, ini, fe_php, transport) > 0);
    fephp_engine *engine = NULL;
    CHECK_OK(fephp_engine_new_from_toml(toml, strlen(toml), &engine));

    for (int i = 0; i < 3; i++) {
        sink s;
        fephp_response *resp = execute(engine, request("GET", "/hello.php"), &s);
        CHECK(fephp_response_status(resp) == 200);
        CHECK(strcmp(s.data, "Hello, world!\n") == 0);
        fephp_response_free(resp);
        sink_free(&s);
    }
    /* Not this process: an executor's pid. */
    sink s;
    fephp_response *resp = execute(engine, request("GET", "/pid.php"), &s);
    CHECK(fephp_response_status(resp) == 200);
    CHECK(atoi(s.data) > 0 && atoi(s.data) != (int)getpid());
    fephp_response_free(resp);
    sink_free(&s);

    check_body_in_pieces(engine);

    fephp_engine_free(engine);
    free(toml);
}

int main(int argc, char **argv) {
    CHECK(argc == 4);
    run("socket", argv[1], argv[2], argv[3]);
    run("shm", argv[1], argv[2], argv[3]);

    char *toml = NULL;
    CHECK(asprintf(&toml, "[server]\ndocument_root = \"%s\"\n\n[php]\nuse_fpm = false\nexecutors = 2\n", argv[2]) > 0);
    fephp_engine *engine = (fephp_engine *)0x1;
    CHECK_RESULT(fephp_engine_new_from_toml(toml, strlen(toml), &engine), FEPHP_ERR_CONFIG);
    CHECK(engine == (fephp_engine *)0x1);
    CHECK(strstr(last_error(), "php.executor_binary") != NULL);
    free(toml);

    /* The executors were other processes: this one never started PHP, so an embedded engine
     * can still be created here. */
    CHECK(asprintf(&toml, "[server]\ndocument_root = \"%s\"\n\n[php]\nuse_fpm = false\nini_file = \"%s\"\n", argv[2],
                   argv[3]) > 0);
    CHECK_OK(fephp_engine_new_from_toml(toml, strlen(toml), &engine));
    fephp_engine_free(engine);
    free(toml);
    printf("executors: ok\n");
    return 0;
}
