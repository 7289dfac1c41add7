/*
 * fe-php worker mode: see worker.h for the API and src/php/worker.rs for the design.
 *
 * Per request (fephp_handle_request), adapted from php_request_startup()/php_request_shutdown()
 * the way FrankenPHP's worker mode does it, plus what its issue list taught:
 * - startup: the request becomes current, the output layer and SAPI are activated (fresh
 *   headers, status 200, the body read for $_POST/$_FILES), the default output buffer and
 *   X-Powered-By as php_request_startup() sets them, $_GET/$_POST/$_COOKIE/$_FILES/$_SERVER/
 *   $_REQUEST re-imported (JIT globals too: the handler was compiled long ago), the session and
 *   filter modules re-initialised, the boot's shutdown functions set aside, the peak memory
 *   reset, the time limit armed;
 * - shutdown: the request's shutdown functions run, output buffers end, session written and
 *   $_SESSION removed, headers sent, SAPI deactivated (uploaded temp files removed), ini
 *   settings the request changed put back to what the boot left (memory_limit included).
 * A fatal error or an uncaught exception in the handler fails that request (500 unless headers
 * went out) and then bails out of the worker script: the executor boots a fresh worker, never
 * a half-state.
 */
#include "worker.h"

#include <string.h>

#include "php.h"
#include "php_main.h"
#include "php_output.h"
#include "php_memory_streams.h"
#include "SAPI.h"
#include "zend_exceptions.h"
#include "zend_ini.h"
#include "ext/standard/basic_functions.h"

/* Modules with per-request state that must be re-initialised for every handled request. */
static const char *const fephp_worker_reload[] = {"filter", "session", NULL};

static struct {
    fephp_worker_hooks hooks;
    const fephp_request *boot;
    int active;     /* inside fephp_worker_run() */
    int booted;     /* fephp_handle_request() was called: the boot's request context is closed */
    int in_request; /* a handler runs */
    int result;
    HashTable *boot_ini;      /* ini values the boot left (name -> string or null) */
    HashTable *boot_shutdown; /* the boot's shutdown functions, set aside during a request */
} fephp_w;

/* ---- helpers ------------------------------------------------------------------------------ */

static void fephp_worker_module_call(zend_module_entry *m, int startup)
{
    zend_try {
        if (startup && m->request_startup_func) {
            m->request_startup_func(m->type, m->module_number);
        } else if (!startup && m->request_shutdown_func) {
            m->request_shutdown_func(m->type, m->module_number);
        }
    } zend_end_try();
}

static void fephp_worker_modules(int startup)
{
    const char *const *name;
    for (name = fephp_worker_reload; *name; name++) {
        zend_module_entry *m = zend_hash_str_find_ptr(&module_registry, *name, strlen(*name));
        if (m != NULL) {
            fephp_worker_module_call(m, startup);
        }
    }
}

/* Temporary streams PHP opened for a request body (php://input) and nobody holds any more. */
static void fephp_worker_release_temp_streams(void)
{
    zend_resource *res;
    int le_stream = php_file_le_stream();
    ZEND_HASH_FOREACH_PTR(&EG(regular_list), res) {
        if (res->type == le_stream) {
            php_stream *s = (php_stream *) res->ptr;
            if (s != NULL && s->ops == &php_stream_temp_ops && s->__exposed == 0 && GC_REFCOUNT(res) == 1) {
                zend_list_delete(res);
            }
        }
    } ZEND_HASH_FOREACH_END();
}

/* Re-imports the request's superglobals ($_ENV stays: it is the process's). */
static void fephp_worker_superglobals(void)
{
    zend_auto_global *ag;
    zend_string *env = ZSTR_KNOWN(ZEND_STR_AUTOGLOBAL_ENV);
    zend_string *request = ZSTR_KNOWN(ZEND_STR_AUTOGLOBAL_REQUEST);
    zval *files = &PG(http_globals)[TRACK_VARS_FILES];

    zval_ptr_dtor_nogc(files);
    ZVAL_UNDEF(files);
    ZEND_HASH_MAP_FOREACH_PTR(CG(auto_globals), ag) {
        if (ag->name == env || ag->name == request) {
            continue;
        }
        if (ag->auto_global_callback) {
            ag->armed = ag->auto_global_callback(ag->name);
        } else {
            ag->armed = 0;
        }
    } ZEND_HASH_FOREACH_END();
    /* $_REQUEST last: it is built from $_GET, $_POST and $_COOKIE. */
    ag = zend_hash_find_ptr(CG(auto_globals), request);
    if (ag && ag->auto_global_callback) {
        ag->armed = ag->auto_global_callback(ag->name);
    }
}

/* Notes the ini values the boot left, to put back after each request. */
static void fephp_worker_snapshot_ini(void)
{
    zend_string *name;
    zend_ini_entry *e;
    ALLOC_HASHTABLE(fephp_w.boot_ini);
    zend_hash_init(fephp_w.boot_ini, 8, NULL, ZVAL_PTR_DTOR, 0);
    if (EG(modified_ini_directives) == NULL) {
        return;
    }
    ZEND_HASH_MAP_FOREACH_STR_KEY_PTR(EG(modified_ini_directives), name, e) {
        zval v;
        if (e->value) {
            ZVAL_STR_COPY(&v, e->value);
        } else {
            ZVAL_NULL(&v);
        }
        zend_hash_update(fephp_w.boot_ini, name, &v);
    } ZEND_HASH_FOREACH_END();
}

static void fephp_worker_restore_one(zend_string *name, zend_string *boot_value)
{
    zend_try {
        zend_ini_entry *e = zend_hash_find_ptr(EG(ini_directives), name);
        if (boot_value) {
            zend_alter_ini_entry_ex(name, boot_value, ZEND_INI_USER, ZEND_INI_STAGE_RUNTIME, 1);
            if (e && e->modified) {
                /* A request's php_admin_value made it ZEND_INI_SYSTEM: back to what it was. */
                e->modifiable = e->orig_modifiable;
            }
        } else {
            /* DEACTIVATE, as PHP's own request shutdown: also restores an entry a
             * php_admin_value made ZEND_INI_SYSTEM (RUNTIME refuses those), modifiability
             * included, and values RUNTIME may not loosen (open_basedir). */
            zend_restore_ini_entry(name, ZEND_INI_STAGE_DEACTIVATE);
        }
    } zend_end_try();
}

/* Puts back every ini setting the request changed (ini_set(), set_time_limit(), .user.ini). */
static void fephp_worker_restore_ini(void)
{
    zend_string *name, **names;
    zend_ini_entry *e;
    uint32_t n = 0, i;

    if (EG(modified_ini_directives) == NULL || zend_hash_num_elements(EG(modified_ini_directives)) == 0) {
        return;
    }
    names = emalloc(sizeof(*names) * zend_hash_num_elements(EG(modified_ini_directives)));
    ZEND_HASH_MAP_FOREACH_STR_KEY_PTR(EG(modified_ini_directives), name, e) {
        zval *boot = fephp_w.boot_ini ? zend_hash_find(fephp_w.boot_ini, name) : NULL;
        if (e->modifiable != e->orig_modifiable) {
            /* changed by a php_admin_value: always put back */
        } else if (boot && Z_TYPE_P(boot) == IS_STRING && e->value && zend_string_equals(e->value, Z_STR_P(boot))) {
            continue;
        } else if (boot && Z_TYPE_P(boot) == IS_NULL && e->value == NULL) {
            continue;
        }
        names[n++] = zend_string_copy(name);
    } ZEND_HASH_FOREACH_END();
    for (i = 0; i < n; i++) {
        zval *boot = fephp_w.boot_ini ? zend_hash_find(fephp_w.boot_ini, names[i]) : NULL;
        fephp_worker_restore_one(names[i], boot && Z_TYPE_P(boot) == IS_STRING ? Z_STR_P(boot) : NULL);
        zend_string_release(names[i]);
    }
    efree(names);
}

/* Ends the output layer and the SAPI request of whatever is current (the boot, or a request). */
static void fephp_worker_close_context(void)
{
    zend_try { php_output_end_all(); } zend_end_try();
    fephp_worker_modules(0);
    /* session's RSHUTDOWN wrote the session; the variable itself must not reach the next request. */
    zend_hash_str_del(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
    zend_try { php_output_deactivate(); } zend_end_try();
    zend_try { sapi_deactivate(); } zend_end_try();
}

/* Makes `req` current with a fresh output layer and SAPI request (php_request_startup's part
 * that is per request). FAILURE when PHP bailed out doing so. */
static int fephp_worker_open_context(const fephp_request *req)
{
    volatile int rc = SUCCESS;
    fephp_shim_enter_request(req);
    zend_try {
        fephp_worker_release_temp_streams();
        /* The request's php_value / php_admin_value first (as before php_request_startup()):
         * upload and post limits apply to its body; put back with the request's other ini
         * changes at its end. */
        fephp_shim_apply_request_ini();
        php_output_activate();
        PG(header_is_being_sent) = 0;
        PG(connection_status) = PHP_CONNECTION_NORMAL;
        sapi_activate();
        if (PG(expose_php)) {
            sapi_add_header(SAPI_PHP_VERSION_HEADER, sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
        }
        if (PG(output_handler) && PG(output_handler)[0]) {
            zval oh;
            ZVAL_STRING(&oh, PG(output_handler));
            php_output_start_user(&oh, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
            zval_ptr_dtor(&oh);
        } else if (PG(output_buffering)) {
            php_output_start_user(NULL, PG(output_buffering) > 1 ? PG(output_buffering) : 0, PHP_OUTPUT_HANDLER_STDFLAGS);
        } else if (PG(implicit_flush)) {
            php_output_set_implicit_flush(1);
        }
        fephp_worker_superglobals();
        fephp_worker_modules(1);
    } zend_catch {
        rc = FAILURE;
    } zend_end_try();
    SG(sapi_started) = 1;
    return rc;
}

/* Back to the boot's context (after the last request), so the rest of the script and PHP's
 * own request shutdown find an active output layer and SAPI request. */
static void fephp_worker_resume_boot(void)
{
    (void) fephp_worker_open_context(fephp_w.boot);
}

/* ---- one request ---------------------------------------------------------------------------- */

static void fephp_worker_end_request(int failed)
{
    size_t peak;

    if (failed && !SG(headers_sent)) {
        SG(sapi_headers).http_response_code = 500;
    }
    /* The request's shutdown functions, then the boot's back in place. */
    zend_try { php_call_shutdown_functions(); } zend_end_try();
    zend_try { php_free_shutdown_functions(); } zend_end_try();
    BG(user_shutdown_function_names) = fephp_w.boot_shutdown;
    fephp_w.boot_shutdown = NULL;
    if (failed && !SG(headers_sent)) {
        SG(sapi_headers).http_response_code = 500; /* a shutdown function may have reset it */
    }
    fephp_worker_close_context();
    peak = zend_memory_peak_usage(1);
    fephp_worker_restore_ini();
    fephp_shim_request_ini(NULL, 0); /* its settings are freed after `done` */
    zend_set_memory_limit(PG(memory_limit));
    fephp_shim_arm_timer(0);
    fephp_w.hooks.done(fephp_w.hooks.ctx, failed, peak);
    /* Stray output until the next request (the loop's own code) goes to the boot's sink. */
    fephp_shim_enter_request(fephp_w.boot);
}

PHP_FUNCTION(fephp_handle_request)
{
    zend_fcall_info fci;
    zend_fcall_info_cache fcc;
    const fephp_request *req;
    volatile int failed = 0, exited = 0;

    ZEND_PARSE_PARAMETERS_START(1, 1)
        Z_PARAM_FUNC(fci, fcc)
    ZEND_PARSE_PARAMETERS_END();

    if (!fephp_w.active || fephp_w.in_request) {
        zend_throw_error(NULL, "fephp_handle_request() works only in a worker script (fephp_worker), outside its handler");
        RETURN_THROWS();
    }
    if (fephp_w.result == FEPHP_WORKER_STOPPED) {
        /* Called again after it said stop: end the script as exit() would, never spin. */
        zend_throw_unwind_exit();
        RETURN_THROWS();
    }
    if (!fephp_w.booted) {
        /* The boot is over: its output and headers go out, its ini values become the base. */
        fephp_worker_close_context();
        fephp_worker_snapshot_ini();
        fephp_w.booted = 1;
    }
    fephp_shim_arm_timer(0); /* no time limit while waiting */
    req = fephp_w.hooks.next(fephp_w.hooks.ctx);
    if (req == NULL) {
        fephp_w.result = FEPHP_WORKER_STOPPED;
        fephp_worker_resume_boot();
        RETURN_FALSE;
    }
    fephp_w.in_request = 1;
    if (fephp_worker_open_context(req) == FAILURE) {
        failed = 1;
    }
    fephp_w.boot_shutdown = BG(user_shutdown_function_names);
    BG(user_shutdown_function_names) = NULL;
    zend_memory_reset_peak_usage();
    fephp_shim_arm_timer((int64_t) EG(timeout_seconds));
    if (!failed) {
        zend_try {
            zval retval;
            ZVAL_UNDEF(&retval);
            fci.retval = &retval;
            fci.params = NULL;
            fci.param_count = 0;
            fci.named_params = NULL;
            if (zend_call_function(&fci, &fcc) == SUCCESS) {
                zval_ptr_dtor(&retval);
            }
            if (EG(exception)) {
                if (zend_is_unwind_exit(EG(exception)) || zend_is_graceful_exit(EG(exception))) {
                    exited = 1;
                } else {
                    /* Like the end of a script: the app's exception handler, then PHP's
                     * "Uncaught ..." fatal error (logged; 500 unless headers went out). */
                    if (Z_TYPE(EG(user_exception_handler)) != IS_UNDEF) {
                        zend_user_exception_handler();
                    }
                    if (EG(exception)) {
                        zend_exception_error(EG(exception), E_ERROR);
                    }
                    failed = 1;
                }
            }
        } zend_catch {
            failed = 1;
        } zend_end_try();
    }
    fephp_shim_arm_timer(0);
    fephp_worker_end_request(failed);
    fephp_w.in_request = 0;
    if (failed) {
        /* The engine may be in a half-state (a fatal error marks every object destructed):
         * leave the worker script; the executor boots a fresh one. */
        fephp_w.result = FEPHP_WORKER_REQUEST_FAILED;
        fephp_worker_resume_boot();
        zend_bailout();
    }
    if (exited) {
        /* exit() in the handler: the request ended normally; the exception unwinds the worker
         * script (a fresh one boots, as with FrankenPHP). */
        fephp_w.result = FEPHP_WORKER_EXITED;
        fephp_worker_resume_boot();
        RETURN_FALSE;
    }
    RETURN_TRUE;
}

/* ---- the worker run ------------------------------------------------------------------------- */

int fephp_worker_run(const fephp_worker_hooks *hooks, const fephp_request *boot)
{
    fephp_outcome outcome;
    int result;

    memset(&fephp_w, 0, sizeof(fephp_w));
    fephp_w.hooks = *hooks;
    fephp_w.boot = boot;
    fephp_w.active = 1;
    fephp_w.result = FEPHP_WORKER_ENDED;
    outcome = fephp_shim_execute(boot);
    if (fephp_w.in_request) {
        /* Cannot happen (every bailout of a handler is caught); never leave a request open. */
        fephp_w.hooks.done(fephp_w.hooks.ctx, 1, 0);
        fephp_w.result = FEPHP_WORKER_REQUEST_FAILED;
    }
    result = (outcome != FEPHP_OK || !fephp_w.booted) ? FEPHP_WORKER_BOOT_FAILED : fephp_w.result;
    /* boot_ini lived in the boot request's memory, freed by its shutdown. */
    memset(&fephp_w, 0, sizeof(fephp_w));
    return result;
}
