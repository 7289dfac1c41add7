/*
 * fe-php worker mode (FrankenPHP's worker mode, in an executor process): the worker script runs
 * ONCE as a request of its own (the "boot request"); it boots the application and then loops on
 * fephp_handle_request($handler), which blocks until the next request, makes that request
 * current (superglobals, headers, status, output layer, ini, shutdown functions), calls the
 * handler inside zend_try, ends the request, and returns false when the worker must stop.
 *
 * Everything that can bail out stays in worker.c; Rust is reached through `hooks` only, and
 * neither hook runs while a PHP frame of the handler is on the stack.
 */
#ifndef FEPHP_WORKER_H
#define FEPHP_WORKER_H

#include <stddef.h>
#include "shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Callbacks of one worker run. */
typedef struct fephp_worker_hooks {
    void *ctx;
    /* Blocks until the next request and returns it (the request lives until `done`); NULL: the
     * worker must stop (recycling, reload, shutdown). */
    const fephp_request *(*next)(void *ctx);
    /* The current request ended: headers and output were given, the response must be ended.
     * `failed`: an uncaught exception or a fatal error (the worker restarts after it).
     * `peak_memory`: memory_get_peak_usage(true) of this request. */
    void (*done)(void *ctx, int failed, size_t peak_memory);
} fephp_worker_hooks;

/* How a worker run ended. */
typedef enum fephp_worker_result {
    FEPHP_WORKER_BOOT_FAILED = 0,    /* the script ended (or failed) before fephp_handle_request() */
    FEPHP_WORKER_STOPPED = 1,        /* `next` said stop; fephp_handle_request() returned false */
    FEPHP_WORKER_REQUEST_FAILED = 2, /* a request failed (uncaught exception, fatal error) */
    FEPHP_WORKER_EXITED = 3,         /* the handler called exit() */
    FEPHP_WORKER_ENDED = 4           /* the script ended on its own after serving */
} fephp_worker_result;

/* Runs the worker script `boot->script_filename` as one request (output before the first
 * fephp_handle_request() goes to `boot->ctx`'s callbacks). Returns a fephp_worker_result. */
int fephp_worker_run(const fephp_worker_hooks *hooks, const fephp_request *boot);

/* ---- provided by shim.c for worker.c ---- */

/* Makes `req` the current request: SAPI callbacks go to its ctx, SG(request_info) is filled
 * from it, fastcgi_finish_request() is available again. */
void fephp_shim_enter_request(const fephp_request *req);
/* Applies the ini settings given with fephp_shim_request_ini() (php_value / php_admin_value
 * for this request only; each entry's status written). */
void fephp_shim_apply_request_ini(void);
/* Arms (seconds > 0) or disarms (0) the execution time limit. */
void fephp_shim_arm_timer(int64_t seconds);

#ifdef __cplusplus
}
#endif

#endif
