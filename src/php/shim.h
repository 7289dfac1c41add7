/*
 * fe-php web SAPI shim: the plain C API between Rust (src/php/ffi.rs) and libphp.
 *
 * Everything that touches Zend macros or can bail out (longjmp) lives in shim.c, behind
 * zend_first_try / zend_try. Rust sees plain structs and calls callbacks that never call
 * back into PHP. All functions run on the single PHP thread, except fephp_shim_timeout_fire().
 */
#ifndef FEPHP_SHIM_H
#define FEPHP_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Callbacks into Rust, installed once by fephp_shim_startup(). `ctx` is fephp_request.ctx. */
typedef struct fephp_callbacks {
    /* Body bytes produced by PHP. 0 = accepted, -1 = the client is gone. */
    int (*write)(void *ctx, const char *buf, size_t len);
    /* PHP asked to flush. 0 = ok, -1 = the client is gone. */
    int (*flush)(void *ctx);
    /* One response header line ("Name: value", no line end). */
    void (*header)(void *ctx, const char *line, size_t len);
    /* All headers were given; `status` is the HTTP status. 0 = ok, -1 = the client is gone. */
    int (*headers_done)(void *ctx, int status);
    /* Up to `len` request body bytes into `buf`; 0 at the end of the body. */
    size_t (*read_body)(void *ctx, char *buf, size_t len);
    /* A log line from PHP (syslog level: 3 error, 4 warning, 5 notice, 6 info, 7 debug). */
    void (*log)(int level, const char *msg, size_t len);
    /* The request's execution time limit (CPU seconds) starts anew; 0 = no limit / disarm. */
    void (*set_timer)(int64_t seconds);
    /* fastcgi_finish_request(): the response is complete (headers were given); the script runs
     * on and its later output is discarded. 0 = ok, -1 = the client is gone. */
    int (*finish)(void *ctx);
} fephp_callbacks;

/* One request. Every string is NUL-terminated and lives until fephp_shim_execute() returns. */
typedef struct fephp_request {
    void *ctx;
    const char *method;
    const char *query_string;
    const char *request_uri;
    const char *content_type;     /* NULL when absent */
    int64_t content_length;       /* 0 when absent (like FPM) */
    const char *script_filename;  /* SCRIPT_FILENAME, also PATH_TRANSLATED */
    const char *cookie;           /* HTTP_COOKIE, NULL when absent */
    const char *authorization;    /* HTTP_AUTHORIZATION, NULL when absent */
    const char *php_self;         /* SCRIPT_NAME + PATH_INFO */
    const char *const *param_names;   /* the CGI params, as $_SERVER gets them */
    const char *const *param_values;
    const size_t *param_value_lens;
    size_t param_count;
} fephp_request;

/* Outcome of fephp_shim_execute(). */
typedef enum fephp_outcome {
    FEPHP_OK = 0,               /* the script ran (it may have failed in PHP: that is a response) */
    FEPHP_STARTUP_FAILED = 1,   /* php_request_startup() failed */
    FEPHP_NOT_STARTED = 2       /* fephp_shim_startup() did not succeed */
} fephp_outcome;

/* Which php.ini module startup reads. */
typedef enum fephp_ini_mode {
    FEPHP_INI_OFF = 0,           /* none, and no scan directory */
    FEPHP_INI_DISTRIBUTION = 1,  /* PHP's own search: PHPRC, then the directory libphp was built with */
    FEPHP_INI_FILE = 2           /* the file `ini_path` (the scan directory as PHP was built) */
} fephp_ini_mode;

/*
 * Module startup, once per process, on the PHP thread. `ini_entries` ("k=v\n" lines) is applied
 * over the php.ini chosen by `ini_mode` (`ini_path` only with FEPHP_INI_FILE).
 * Returns 0 on success.
 */
int fephp_shim_startup(const fephp_callbacks *callbacks, const char *ini_entries, int ini_mode, const char *ini_path);

/* What module startup loaded (valid after a successful fephp_shim_startup()). Strings are
 * PHP's own, NULL when there is none; they live as long as PHP. */
typedef struct fephp_ini_report {
    const char *loaded_file;     /* php_ini_loaded_file() */
    const char *scan_dir;        /* the scan directory used ($PHP_INI_SCAN_DIR or the built-in one) */
    const char *scanned_files;   /* php_ini_scanned_files(): comma-separated */
    const char *built_ini_dir;   /* PHP_CONFIG_FILE_PATH of libphp */
    const char *built_scan_dir;  /* PHP_CONFIG_FILE_SCAN_DIR of libphp */
    int opcache_loaded;          /* the Zend OPcache extension is loaded */
} fephp_ini_report;

void fephp_shim_ini_report(fephp_ini_report *out);

/* One ini setting for the next request only (nginx fephp_php_value / fephp_php_admin_value). */
typedef struct fephp_ini_entry {
    const char *name;
    const char *value;
    int admin;     /* php_admin_value: ini_set() and .user.ini cannot change it */
    int status;    /* written by the shim: 0 applied, 1 unknown name, 2 value refused */
} fephp_ini_entry;

/* Hands the next fephp_shim_execute() its ini settings (applied before PHP's request startup,
 * undone by its request shutdown). The array must live until that call returns; the shim
 * forgets it then. */
void fephp_shim_request_ini(fephp_ini_entry *entries, size_t count);

/* Runs one request to the end (startup, script, shutdown). */
fephp_outcome fephp_shim_execute(const fephp_request *req);

/* Called from the watchdog thread: the time limit passed, make the VM raise PHP's timeout fatal. */
void fephp_shim_timeout_fire(void);

/* Slow log: where backtraces go (NULL or "": stderr) and the timeout they name. Call before
 * requests run (any thread, before the PHP thread starts serving). */
void fephp_shim_slowlog_target(const char *path, double timeout_seconds);

/* Called from the watchdog thread: the running request is slow; its backtrace is written at the
 * VM's next interrupt check, on the PHP thread. */
void fephp_shim_slowlog_fire(void);

/* The SAPI name scripts see (php_sapi_name()). */
const char *fephp_shim_sapi_name(void);

/* memory_get_peak_usage(true) of the last request (noted before its shutdown). */
size_t fephp_shim_last_peak_memory(void);

#ifdef __cplusplus
}
#endif

#endif
