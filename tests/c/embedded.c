/* The embedded libphp backend through the C API: hello world, a body appended in pieces, and a second embedded engine in
 * the same process refused with FEPHP_ERR_ALREADY_EMBEDDED (PHP is NTS), while an FPM engine
 * beside it is fine. argv[1] is unused ("-"), argv[2] the scripts dir, argv[3] the php.ini. */
#define _GNU_SOURCE
#include "common.h"

int main(int argc, char **argv) {
    CHECK(argc == 4);
    char *toml = NULL;
    CHECK(asprintf(&toml, "[server]\ndocument_root = \"%s\"\n\n[php]\nuse_fpm = false\nini_file = \"%s\"\n", argv[2],
                   argv[3]) > 0);
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

    check_body_in_pieces(engine); /* every piece reaches PHP's read_post */

    fephp_engine *second = (fephp_engine *)0x1;
    CHECK_RESULT(fephp_engine_new_from_toml(toml, strlen(toml), &second), FEPHP_ERR_ALREADY_EMBEDDED);
    CHECK(second == (fephp_engine *)0x1);
    CHECK(strstr(last_error(), "already") != NULL);

    fephp_engine *fpm = fpm_engine("unix:/nonexistent/fephp-fpm.sock", argv[2]); /* not limited */
    fephp_engine_free(fpm);

    fephp_engine_free(engine);
    free(toml);
    printf("embedded: ok\n");
    return 0;
}
