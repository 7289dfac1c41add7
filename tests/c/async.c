/* fephp_execute_async: concurrent requests completing on the engine's threads, the body
 * streamed on those threads, FEPHP_ERR_WRONG_THREAD for a blocking call inside a callback,
 * and FEPHP_ERR_CANCELLED for requests still running when the engine is freed. */
#include "common.h"

#include <pthread.h>

#define N 8

typedef struct job {
    sink body;
    fephp_result result;
    int status;
    int done;
    fephp_result nested;
} job;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int completed;
static pthread_t main_thread;

static void on_complete(void *userdata, fephp_result result, fephp_response *resp) {
    job *j = userdata;
    /* runs on a runtime thread (a cancellation may run on the thread freeing the engine) */
    CHECK(result == FEPHP_ERR_CANCELLED || !pthread_equal(pthread_self(), main_thread));
    j->result = result;
    if (result == FEPHP_OK) {
        CHECK(resp != NULL);
        j->status = fephp_response_status(resp);
        fephp_response_free(resp);
    } else {
        CHECK(resp == NULL);
        CHECK(fephp_last_error(NULL, 0) > 0); /* the reason, on this thread */
    }
    pthread_mutex_lock(&lock);
    j->done++;
    completed++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static fephp_engine *nested_engine;

static int nested_on_head_real(void *userdata, const fephp_response *resp) {
    (void)resp;
    job *j = userdata;
    j->nested = fephp_execute(nested_engine, request("GET", "/hello.php"), NULL, NULL, NULL);
    return 0;
}

static void wait_for(int n) {
    pthread_mutex_lock(&lock);
    while (completed < n) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    main_thread = pthread_self();
    fephp_engine *engine = fpm_engine(argv[1], argv[2]);

    static job jobs[N];
    for (int i = 0; i < N; i++) {
        const char *uri = i % 2 ? "/hello.php" : "/big_output.php?mb=1";
        /* one userdata for both: the sink is the first member of the job */
        CHECK_OK(fephp_execute_async(engine, request("GET", uri), &SINK_CALLBACKS, &jobs[i], on_complete));
    }
    wait_for(N);
    for (int i = 0; i < N; i++) {
        CHECK(jobs[i].done == 1);
        CHECK(jobs[i].result == FEPHP_OK && jobs[i].status == 200);
        if (i % 2) {
            CHECK(strcmp(jobs[i].body.data, "Hello, world!\n") == 0);
        } else {
            CHECK(jobs[i].body.len == 1024 * 1024);
        }
        sink_free(&jobs[i].body);
    }

    /* blocking execute inside a callback -> FEPHP_ERR_WRONG_THREAD */
    nested_engine = engine;
    job nested = {0};
    fephp_write_callbacks cb = {nested_on_head_real, NULL};
    CHECK_OK(fephp_execute_async(engine, request("GET", "/hello.php"), &cb, &nested, on_complete));
    wait_for(N + 1);
    CHECK(nested.result == FEPHP_OK && nested.nested == FEPHP_ERR_WRONG_THREAD);

    /* FPM down: the completion carries a 502 response */
    fephp_engine *down = fpm_engine("unix:/nonexistent/fephp-fpm.sock", argv[2]);
    job failed = {0};
    CHECK_OK(fephp_execute_async(down, request("GET", "/hello.php"), &SINK_CALLBACKS, &failed, on_complete));
    wait_for(N + 2);
    CHECK(failed.result == FEPHP_OK && failed.status == 502);
    sink_free(&failed.body);
    fephp_engine_free(down);

    /* freeing the engine cancels what is still running: on_complete(FEPHP_ERR_CANCELLED) */
    static job slow[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(fephp_execute_async(engine, request("GET", "/sleep.php?s=2"), &SINK_CALLBACKS, &slow[i], on_complete));
    }
    fephp_engine_free(engine);
    wait_for(N + 4); /* already true: free returns after the cancellations */
    for (int i = 0; i < 2; i++) {
        CHECK(slow[i].done == 1 && slow[i].result == FEPHP_ERR_CANCELLED);
        sink_free(&slow[i].body);
    }
    printf("async: ok\n");
    return 0;
}
