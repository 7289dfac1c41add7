/*
 * fe-php web SAPI over libphp (NTS): the sapi_module_struct, module startup and the request
 * cycle. See shim.h for the API and src/php/mod.rs for the design (opcache name, timeouts,
 * per-request process state).
 */
#include "shim.h"
#include "worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <locale.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "php.h"
#include "php_main.h"
#include "php_variables.h"
#include "SAPI.h"
#include "zend_extensions.h"
#include "zend_ini.h"
#include "zend_signal.h"
#include "ext/standard/head.h"
#include "php_ini.h"
#include "ext/standard/info.h"
#include "main/http_status_codes.h"

/* Name PHP sees while modules start (opcache enables itself only for names it knows). */
#define FEPHP_STARTUP_NAME "fpm-fcgi"
/* Name scripts see afterwards (php_sapi_name(), PHP_SAPI). */
#define FEPHP_SAPI_NAME "fe-php"

/* Defined (and exported) by libphp's main/php_ini.c, declared in no installed header. */
extern char *php_ini_opened_path;
extern char *php_ini_scanned_path;
extern char *php_ini_scanned_files;

static fephp_callbacks fephp_cb;
static const fephp_request *fephp_current;
static int fephp_started;
static char *fephp_ini_entries;
static char *fephp_ini_path;
/* fastcgi_finish_request() was called in this request: later output is discarded. */
static int fephp_finished;
static void fephp_ops_request_start(void);
static void fephp_ops_request_end(void);
static int fephp_ops_activate(void);
static void fephp_ops_slowlog_install(void);
/* Set by the watchdog thread (fephp_shim_slowlog_fire), taken by the VM interrupt hook. */
static zend_atomic_bool fephp_slowlog_pending;
static const zend_function_entry *fephp_ops_function_table(void);

/* ---- sapi_module_struct callbacks ---------------------------------------------------- */

static int fephp_sapi_startup(sapi_module_struct *module)
{
    return php_module_startup(module, NULL);
}

static int fephp_sapi_deactivate(void)
{
    return SUCCESS;
}

static size_t fephp_ub_write(const char *str, size_t len)
{
    const fephp_request *req = fephp_current;
    if (req == NULL || fephp_finished) {
        return len;
    }
    if (fephp_cb.write(req->ctx, str, len) != 0) {
        /* Client gone: like FPM, let PHP decide (bails out unless ignore_user_abort). */
        php_handle_aborted_connection();
    }
    return len;
}

static void fephp_flush(void *server_context)
{
    const fephp_request *req = (const fephp_request *) server_context;
    if (req == NULL || req != fephp_current || fephp_finished) {
        return;
    }
    /* Like FPM: flushing sends what is buffered; headers go with the first output. */
    if (fephp_cb.flush(req->ctx) != 0) {
        php_handle_aborted_connection();
    }
}

static char *fephp_getenv(const char *name, size_t name_len)
{
    const fephp_request *req = fephp_current;
    size_t i;
    if (req == NULL) {
        return NULL;
    }
    /* The last entry wins, like $_SERVER. */
    for (i = req->param_count; i > 0; i--) {
        const char *n = req->param_names[i - 1];
        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0) {
            return (char *) req->param_values[i - 1];
        }
    }
    return NULL;
}

/* Like php-fpm's CGI SAPI (sapi_cgi_send_headers): a status other than 200 goes out as a
 * `Status: <code> <reason>` line, with the reason of an `HTTP/x y reason` header() line or
 * else PHP's own table, unless the script sent a Status header itself. The web server passes
 * that line on as its status line (fastcgi_pass does). */
static void fephp_send_status_line(const fephp_request *req, sapi_headers_struct *headers, int status)
{
    char buf[128];
    int len = 0;
    const char *line = headers->http_status_line;
    const char *sp;
    zend_llist_position pos;
    sapi_header_struct *h;

    if (status == 200) {
        return;
    }
    h = (sapi_header_struct *) zend_llist_get_first_ex(&headers->headers, &pos);
    while (h) {
        if (h->header_len > 7 && strncasecmp(h->header, "Status:", 7) == 0) {
            return;
        }
        h = (sapi_header_struct *) zend_llist_get_next_ex(&headers->headers, &pos);
    }
    if (line != NULL && strncasecmp(line, "HTTP/", 5) == 0 && (sp = strchr(line, ' ')) != NULL
        && (sp = strchr(sp + 1, ' ')) != NULL && sp[1] != '\0') {
        len = snprintf(buf, sizeof buf, "Status: %d %s", status, sp + 1);
    } else {
        const http_response_status_code_pair *p = http_status_map;
        while (p->code != 0 && p->code != status) {
            p++;
        }
        if (p->str != NULL) {
            len = snprintf(buf, sizeof buf, "Status: %d %s", status, p->str);
        }
    }
    if (len > 0 && (size_t) len < sizeof buf) {
        fephp_cb.header(req->ctx, buf, (size_t) len);
    }
}

static int fephp_send_headers(sapi_headers_struct *headers)
{
    const fephp_request *req = fephp_current;
    zend_llist_position pos;
    sapi_header_struct *h;
    int status;

    if (req == NULL) {
        return SAPI_HEADER_SENT_SUCCESSFULLY;
    }
    status = headers->http_response_code ? headers->http_response_code : 200;
    h = (sapi_header_struct *) zend_llist_get_first_ex(&headers->headers, &pos);
    while (h) {
        fephp_cb.header(req->ctx, h->header, h->header_len);
        h = (sapi_header_struct *) zend_llist_get_next_ex(&headers->headers, &pos);
    }
    fephp_send_status_line(req, headers, status);
    /* If nobody waits any more, the next write reports the aborted connection. */
    (void) fephp_cb.headers_done(req->ctx, status);
    return SAPI_HEADER_SENT_SUCCESSFULLY;
}

static size_t fephp_read_post(char *buffer, size_t count)
{
    const fephp_request *req = fephp_current;
    if (req == NULL) {
        return 0;
    }
    return fephp_cb.read_body(req->ctx, buffer, count);
}

static char *fephp_read_cookies(void)
{
    const fephp_request *req = fephp_current;
    return req ? (char *) req->cookie : NULL;
}

static void fephp_register_variables(zval *track_vars_array)
{
    const fephp_request *req = fephp_current;
    size_t i;
    if (req == NULL) {
        return;
    }
    for (i = 0; i < req->param_count; i++) {
        char *value = (char *) req->param_values[i];
        size_t len = req->param_value_lens[i];
        size_t new_len = len;
        /* Same path as FPM: the input filter sees each value. */
        if (sapi_module.input_filter(PARSE_SERVER, req->param_names[i], &value, len, &new_len)) {
            php_register_variable_safe(req->param_names[i], value, new_len, track_vars_array);
        }
    }
    if (req->php_self) {
        char *self = (char *) req->php_self;
        size_t len = strlen(self);
        size_t new_len = len;
        if (sapi_module.input_filter(PARSE_SERVER, "PHP_SELF", &self, len, &new_len)) {
            php_register_variable_safe("PHP_SELF", self, new_len, track_vars_array);
        }
    }
}

static void fephp_log_message(const char *message, int syslog_type)
{
    if (fephp_cb.log) {
        fephp_cb.log(syslog_type, message, strlen(message));
    }
}

static sapi_module_struct fephp_sapi_module = {
    FEPHP_STARTUP_NAME,          /* name (changed to FEPHP_SAPI_NAME after startup) */
    "fe-php embedded web SAPI",  /* pretty name */
    fephp_sapi_startup,          /* startup */
    php_module_shutdown_wrapper, /* shutdown */
    NULL,                        /* activate */
    fephp_sapi_deactivate,       /* deactivate */
    fephp_ub_write,              /* unbuffered write */
    fephp_flush,                 /* flush */
    NULL,                        /* get uid */
    fephp_getenv,                /* getenv */
    php_error,                   /* error handler */
    NULL,                        /* header handler */
    fephp_send_headers,          /* send headers handler */
    NULL,                        /* send header handler */
    fephp_read_post,             /* read POST data */
    fephp_read_cookies,          /* read Cookies */
    fephp_register_variables,    /* register server variables */
    fephp_log_message,           /* log message */
    NULL,                        /* get request time */
    NULL,                        /* terminate process */
    STANDARD_SAPI_MODULE_PROPERTIES
};

/* ---- max_execution_time without SIGPROF --------------------------------------------- */

/*
 * Replaces the on_modify handler of `max_execution_time` (PHP's OnUpdateTimeout arms an
 * ITIMER_PROF timer: process-wide CPU time, with a hard_timeout that _exit()s). Ours keeps
 * EG(timeout_seconds) and hands the limit to the Rust watchdog, so set_time_limit() and
 * ini_set('max_execution_time') keep working.
 *
 * While the shim hides the limit from PHP (request startup and shutdown, see
 * fephp_shim_execute) a change (per-request values, .user.ini, the ini restore of request
 * shutdown) only lands in the ini entry, which PHP updates after this handler: the shim reads
 * the limit from there when the script starts (fephp_configured_limit).
 */
static zend_ini_entry *fephp_timeout_entry;
static int fephp_limit_hidden;

static ZEND_INI_MH(fephp_on_update_timeout)
{
    (void) entry; (void) mh_arg1; (void) mh_arg2; (void) mh_arg3;
    if (stage != ZEND_INI_STAGE_STARTUP && fephp_limit_hidden) {
        return SUCCESS;
    }
    EG(timeout_seconds) = ZEND_ATOL(ZSTR_VAL(new_value));
    if (stage == ZEND_INI_STAGE_STARTUP) {
        return SUCCESS;
    }
    if (fephp_current != NULL && fephp_cb.set_timer) {
        fephp_cb.set_timer(stage == ZEND_INI_STAGE_DEACTIVATE ? 0 : (int64_t) EG(timeout_seconds));
    }
    return SUCCESS;
}

/* max_execution_time as it stands now (php.ini, per-request values, .user.ini, ini_set()). */
static zend_long fephp_configured_limit(void)
{
    if (fephp_timeout_entry == NULL || fephp_timeout_entry->value == NULL) {
        return EG(timeout_seconds);
    }
    return ZEND_ATOL(ZSTR_VAL(fephp_timeout_entry->value));
}

void fephp_shim_timeout_fire(void)
{
    zend_atomic_bool_store_ex(&EG(timed_out), true);
    zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
}

/* ---- startup --------------------------------------------------------------------------- */

static void fephp_save_home(void);

int fephp_shim_startup(const fephp_callbacks *callbacks, const char *ini_entries, int ini_mode, const char *ini_path)
{
    if (fephp_started) {
        return -1;
    }
    fephp_cb = *callbacks;

#ifdef ZEND_SIGNALS
    zend_signal_startup();
#endif
    sapi_startup(&fephp_sapi_module);
    /* The shim enters the script's directory itself (fephp_enter_script_dir), without PHP's
     * getcwd + chdir + chdir back around every script. */
    SG(options) |= SAPI_OPTION_NO_CHDIR;

    fephp_ini_entries = strdup(ini_entries ? ini_entries : "");
    sapi_module.ini_entries = fephp_ini_entries;
    /* Like the embed and FPM SAPIs: never a php.ini from the host's working directory. */
    sapi_module.php_ini_ignore_cwd = 1;
    sapi_module.php_ini_path_override = NULL;
    sapi_module.php_ini_ignore = 0;
    if (ini_mode == FEPHP_INI_FILE && ini_path) {
        fephp_ini_path = strdup(ini_path);
        sapi_module.php_ini_path_override = fephp_ini_path;
    } else if (ini_mode != FEPHP_INI_DISTRIBUTION) {
        sapi_module.php_ini_ignore = 1;
    }
    sapi_module.phpinfo_as_text = 0;
    /* fastcgi_finish_request(), registered by module startup like FPM's own functions. */
    sapi_module.additional_functions = fephp_ops_function_table();
    /* .user.ini files and [PATH=] sections, at each request (like php-fpm's sapi_cgi_activate). */
    sapi_module.activate = fephp_ops_activate;

    if (sapi_module.startup(&sapi_module) == FAILURE) {
        return -1;
    }
    /* opcache has looked at the name (accel_startup); from now on scripts see ours, through
     * php_sapi_name() and the PHP_SAPI constant (registered during startup with the old name). */
    sapi_module.name = (char *) FEPHP_SAPI_NAME;
    {
        zend_constant *c = zend_hash_str_find_ptr(EG(zend_constants), "PHP_SAPI", sizeof("PHP_SAPI") - 1);
        if (c && Z_TYPE(c->value) == IS_STRING) {
            /* The old value is an interned startup string: left alone. */
            ZVAL_STR(&c->value, zend_string_init(FEPHP_SAPI_NAME, sizeof(FEPHP_SAPI_NAME) - 1, 1));
        }
    }

#ifdef ZEND_SIGNALS
    /* Don't take over the host's SIGTERM/SIGHUP/SIGINT/SIGUSR* handlers at each request. */
    SIGG(reset) = 0;
#endif

    fephp_timeout_entry = zend_hash_str_find_ptr(EG(ini_directives), "max_execution_time", sizeof("max_execution_time") - 1);
    if (fephp_timeout_entry) {
        fephp_timeout_entry->on_modify = fephp_on_update_timeout;
    }
    fephp_save_home();
    fephp_ops_slowlog_install();
    fephp_started = 1;
    return 0;
}

static const char *fephp_constant_string(const char *name)
{
    zend_constant *c = zend_hash_str_find_ptr(EG(zend_constants), name, strlen(name));
    return c && Z_TYPE(c->value) == IS_STRING ? Z_STRVAL(c->value) : NULL;
}

void fephp_shim_ini_report(fephp_ini_report *out)
{
    memset(out, 0, sizeof(*out));
    if (!fephp_started) {
        return;
    }
    out->loaded_file = php_ini_opened_path;
    out->scan_dir = php_ini_scanned_path;
    out->scanned_files = php_ini_scanned_files;
    out->built_ini_dir = fephp_constant_string("PHP_CONFIG_FILE_PATH");
    out->built_scan_dir = fephp_constant_string("PHP_CONFIG_FILE_SCAN_DIR");
    out->opcache_loaded = zend_get_extension("Zend OPcache") != NULL;
}

const char *fephp_shim_sapi_name(void)
{
    return sapi_module.name;
}

/* ---- one request ----------------------------------------------------------------------- */

/*
 * Process state a script can change and that must not outlive its request, as it was when PHP
 * started (noted once, by fephp_shim_startup, so a request costs no system call to save it).
 * PHP itself puts the locale back in its RSHUTDOWN; this catches what a script, a shutdown
 * function or an extension changes.
 *
 * The PHP thread first takes a filesystem context of its own (unshare(CLONE_FS): working
 * directory, umask and root are then per thread): a script's directory, its chdir() and
 * umask() never reach the host's threads (the nginx event loop, a C ABI host), even while the
 * script runs, and the host's working directory needs no restoring after each request. Where
 * unshare is refused (a seccomp filter), the directory is restored with fchdir() as before.
 */
static int fephp_own_fs;
static int fephp_home_fd = -1;
static void fephp_watch_chdir(void);
static mode_t fephp_home_umask;
static char *fephp_home_locale;

static void fephp_save_home(void)
{
    const char *loc;
    fephp_own_fs = unshare(CLONE_FS) == 0;
    if (fephp_own_fs) {
        fephp_watch_chdir();
    } else {
        fephp_home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    fephp_home_umask = umask(022);
    umask(fephp_home_umask);
    loc = setlocale(LC_ALL, NULL);
    fephp_home_locale = loc ? strdup(loc) : NULL;
}

/* The umask is not restored here: a script changes it only through PHP's umask(), which
 * remembers the old value and puts it back in the basic extension's RSHUTDOWN (one umask()
 * system call per request saved). */
static void fephp_restore_home(void)
{
    const char *loc;
    if (!fephp_own_fs && fephp_home_fd >= 0 && fchdir(fephp_home_fd) != 0) {
        static const char msg[] = "fe-php: cannot restore the working directory after a request";
        fephp_log_message(msg, 3);
    }
    loc = setlocale(LC_ALL, NULL);
    if (fephp_home_locale && (!loc || strcmp(loc, fephp_home_locale) != 0)) {
        setlocale(LC_ALL, fephp_home_locale);
    }
}

/*
 * Like FPM, a script runs in its own directory. PHP would getcwd(), chdir() there and chdir()
 * back (two path walks per request); the shim keeps the last script directory open (O_PATH)
 * and enters it with fchdir(), reopening it when the directory differs or the descriptor is
 * older than FEPHP_DIR_TTL seconds (so a `current -> release` symlink swap is seen soon).
 * With a filesystem context of its own (fephp_own_fs) the PHP thread stays there between
 * requests, so the next script of the same directory needs no system call at all, unless a
 * script left it: PHP's chdir() is wrapped to note that (fephp_watch_chdir). Otherwise
 * fephp_restore_home() leaves it after each request.
 */
#define FEPHP_DIR_TTL 2
static char fephp_dir[4096];
static size_t fephp_dir_len;
static int fephp_dir_fd = -1;
static time_t fephp_dir_at;
/* The working directory is fephp_dir (entered, and no chdir() since). */
static int fephp_in_dir;
static zif_handler fephp_php_chdir;

static ZEND_NAMED_FUNCTION(fephp_chdir)
{
    fephp_in_dir = 0;
    fephp_php_chdir(INTERNAL_FUNCTION_PARAM_PASSTHRU);
}

/* Wraps PHP's chdir() (after module startup, before any script is compiled). */
static void fephp_watch_chdir(void)
{
    zend_function *f = zend_hash_str_find_ptr(CG(function_table), "chdir", sizeof("chdir") - 1);
    if (f != NULL && f->type == ZEND_INTERNAL_FUNCTION && f->internal_function.handler != NULL) {
        fephp_php_chdir = f->internal_function.handler;
        f->internal_function.handler = fephp_chdir;
    }
}

static void fephp_enter_script_dir(const char *filename)
{
    const char *slash = strrchr(filename, '/');
    size_t len;
    time_t now = time(NULL);

    if (!slash) {
        return;
    }
    len = slash == filename ? 1 : (size_t) (slash - filename);
    if (len >= sizeof(fephp_dir)) {
        return;
    }
    if (fephp_dir_fd < 0 || len != fephp_dir_len || memcmp(fephp_dir, filename, len) != 0
        || now - fephp_dir_at >= FEPHP_DIR_TTL || now < fephp_dir_at) {
        char path[sizeof(fephp_dir)];
        int fd;
        memcpy(path, filename, len);
        path[len] = '\0';
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            return; /* PHP fails to open the script and answers for it */
        }
        if (fephp_dir_fd >= 0) {
            close(fephp_dir_fd);
        }
        fephp_dir_fd = fd;
        memcpy(fephp_dir, path, len + 1);
        fephp_dir_len = len;
        fephp_dir_at = now;
        fephp_in_dir = 0;
    }
    if (fephp_in_dir && fephp_own_fs && fephp_php_chdir != NULL) {
        return;
    }
    if (fchdir(fephp_dir_fd) != 0) {
        close(fephp_dir_fd); /* reopened next time; the script runs in the previous cwd */
        fephp_dir_fd = -1;
        fephp_in_dir = 0;
        return;
    }
    fephp_in_dir = 1;
}

static void fephp_fill_request_info(const fephp_request *req)
{
    SG(server_context) = (void *) req;
    /* sapi_activate() leaves the status to the SAPI (FPM sets 200 the same way); PHP's
     * "fatal error -> 500" rule only applies while it is 200. */
    SG(sapi_headers).http_response_code = 200;
    SG(request_info).request_method = req->method;
    SG(request_info).query_string = (char *) req->query_string;
    SG(request_info).request_uri = (char *) req->request_uri;
    SG(request_info).content_type = req->content_type;
    SG(request_info).content_length = req->content_length;
    SG(request_info).path_translated = (char *) req->script_filename;
    /* Like FPM: Location without a 3xx status is 302, whatever the method. */
    SG(request_info).proto_num = 1000;
    SG(request_info).argc = 0;
    SG(request_info).argv = NULL;
    SG(request_info).auth_user = NULL;
    SG(request_info).auth_password = NULL;
    SG(request_info).auth_digest = NULL;
    if (req->authorization) {
        php_handle_auth_data(req->authorization);
    }
}

/* memory_get_peak_usage(true) of the last request, noted before its shutdown. */
static size_t fephp_last_peak;

size_t fephp_shim_last_peak_memory(void)
{
    return fephp_last_peak;
}

fephp_outcome fephp_shim_execute(const fephp_request *req)
{
    /* Written inside zend_first_try and read after a possible longjmp: volatile. */
    volatile fephp_outcome outcome = FEPHP_OK;
    volatile int have_file = 0;
    volatile zend_long input_time;
    zend_file_handle file;

    if (!fephp_started) {
        return FEPHP_NOT_STARTED;
    }
    fephp_current = req;
    fephp_fill_request_info(req);

    /* PHP's own time limit is an ITIMER_PROF timer; the watchdog replaces it, so PHP must arm
     * none. php_request_startup() arms it with EG(timeout_seconds), or with max_input_time
     * when that is not -1 (the distribution's php.ini says 60), and php_execute_script() then
     * re-arms it with max_execution_time; php_request_shutdown() cancels it whenever
     * EG(timeout_seconds) is set. Hidden (limit 0, max_input_time -1) through startup and
     * shutdown, PHP calls no setitimer() at all. The limit the script runs with is the ini
     * entry's once startup has applied per-request values and .user.ini files. */
    fephp_limit_hidden = 1;
    EG(timeout_seconds) = 0;
    input_time = PG(max_input_time);
    PG(max_input_time) = -1;
    fephp_ops_request_start();
    zend_first_try {
        int started = php_request_startup();
        if (PG(max_input_time) != -1) {
            /* A .user.ini set max_input_time: PHP armed its timer with it. */
            zend_unset_timeout();
            input_time = PG(max_input_time);
            PG(max_input_time) = -1;
        }
        fephp_limit_hidden = 0;
        EG(timeout_seconds) = fephp_configured_limit();
        if (started == FAILURE) {
            outcome = FEPHP_STARTUP_FAILED;
        } else {
            if (fephp_cb.set_timer) {
                fephp_cb.set_timer((int64_t) EG(timeout_seconds));
            }
            fephp_enter_script_dir(req->script_filename);
            zend_stream_init_filename(&file, req->script_filename);
            have_file = 1;
            php_execute_script(&file);
        }
    } zend_end_try();

    /* Also after exit()/a fatal error (a bailout skips the rest of the try block), and while
     * the request's memory manager is still up, like the CLI SAPI does. */
    if (have_file) {
        zend_destroy_file_handle(&file);
    }

    /* Hidden again for shutdown (see above); its ini restore lands in the entries, and the
     * limit between requests is the configured one. */
    PG(max_input_time) = input_time;
    fephp_limit_hidden = 1;
    EG(timeout_seconds) = 0;
    fephp_last_peak = zend_memory_peak_usage(1);
    zend_try {
        php_request_shutdown(NULL);
    } zend_end_try();
    fephp_limit_hidden = 0;
    EG(timeout_seconds) = fephp_configured_limit();

    if (fephp_cb.set_timer) {
        fephp_cb.set_timer(0);
    }
    fephp_ops_request_end();
    fephp_current = NULL;
    SG(server_context) = NULL;
    memset(&SG(request_info), 0, sizeof(SG(request_info)));
    fephp_restore_home();
    return outcome;
}

/* ---- fastcgi_finish_request() ------------------------------------------------------------ */

/*
 * Like FPM's: every output buffer is flushed, the headers go out, and the response ends for
 * the client (the `finish` callback hands over the end mark) while the script runs on. Its later
 * output is discarded (fephp_ub_write / fephp_flush), its time limit keeps counting. A second
 * call returns false, as in FPM.
 */
/* ---- per-request ini ----------------------------------------------------------------------- */

/*
 * Like mod_php's php_value / php_admin_value (and php-fpm's pool php_value[] /
 * php_admin_value[]): each setting is altered at ZEND_INI_STAGE_ACTIVATE before PHP's request
 * startup (so upload_max_filesize, post_max_size or max_input_vars apply to this request's body),
 * whatever the entry's own modifiability (force, as php-fpm does); an admin value is then
 * ZEND_INI_SYSTEM, so ini_set() and .user.ini cannot change it. PHP's request shutdown
 * (zend_ini_deactivate) restores every altered entry, value and modifiability.
 */
static fephp_ini_entry *fephp_req_ini;
static size_t fephp_req_ini_count;

void fephp_shim_request_ini(fephp_ini_entry *entries, size_t count)
{
    fephp_req_ini = entries;
    fephp_req_ini_count = count;
}

void fephp_shim_apply_request_ini(void)
{
    size_t i;
    for (i = 0; i < fephp_req_ini_count; i++) {
        fephp_ini_entry *e = &fephp_req_ini[i];
        zend_string *name = zend_string_init(e->name, strlen(e->name), 0);
        zend_string *value;
        if (!zend_hash_exists(EG(ini_directives), name)) {
            e->status = 1;
        } else {
            value = zend_string_init(e->value, strlen(e->value), 0);
            e->status = zend_alter_ini_entry_ex(name, value, e->admin ? ZEND_INI_SYSTEM : ZEND_INI_USER,
                                                ZEND_INI_STAGE_ACTIVATE, 1) == SUCCESS ? 0 : 2;
            zend_string_release(value);
        }
        zend_string_release(name);
    }
}

static void fephp_ops_request_start(void)
{
    fephp_finished = 0;
    zend_atomic_bool_store_ex(&fephp_slowlog_pending, false);
    fephp_shim_apply_request_ini();
}

static void fephp_ops_request_end(void)
{
    fephp_req_ini = NULL;
    fephp_req_ini_count = 0;
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fephp_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

static PHP_FUNCTION(fastcgi_finish_request)
{
    const fephp_request *req = fephp_current;

    ZEND_PARSE_PARAMETERS_NONE();
    if (req == NULL || fephp_finished) {
        RETURN_FALSE;
    }
    php_output_end_all();
    php_header();
    fephp_finished = 1;
    if (fephp_cb.finish) {
        (void) fephp_cb.finish(req->ctx);
    }
    RETURN_TRUE;
}

/* fephp_handle_request(callable $handler): bool, defined in worker.c (worker mode). */
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fephp_handle_request, 0, 1, _IS_BOOL, 0)
    ZEND_ARG_TYPE_INFO(0, handler, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()
PHP_FUNCTION(fephp_handle_request);

static const zend_function_entry fephp_ops_functions[] = {
    ZEND_FE(fastcgi_finish_request, arginfo_fephp_finish_request)
    ZEND_FE(fephp_handle_request, arginfo_fephp_handle_request)
    ZEND_FE_END
};

static const zend_function_entry *fephp_ops_function_table(void)
{
    return fephp_ops_functions;
}

/* ---- .user.ini ---------------------------------------------------------------------------- */

/*
 * As php-fpm (sapi_cgi_activate / php_cgi_ini_activate_user_config): at each request, the
 * php.ini's [PATH=] sections for the script's directory, then every `user_ini.filename` file
 * from the document root down to the script's directory (only the script's directory when it
 * lies outside the root), parsed by PHP's own php_parse_user_ini_file() and activated with
 * PHP_INI_PERDIR at PHP_INI_STAGE_HTACCESS (so PHP_INI_SYSTEM settings and admin values stay
 * as they are). The parsed files of a directory are cached for `user_ini.cache_ttl` seconds.
 * Runs inside php_request_startup() (the SAPI activate hook), like php-fpm's.
 */
typedef struct fephp_user_ini {
    time_t expires;
    HashTable config;
} fephp_user_ini;

static HashTable fephp_user_ini_cache;
static int fephp_user_ini_cache_ready;

static void fephp_user_ini_dtor(zval *el)
{
    fephp_user_ini *e = (fephp_user_ini *) Z_PTR_P(el);
    zend_hash_destroy(&e->config);
    free(e);
}

static void fephp_ops_user_ini(char *path, size_t path_len, const char *doc_root, size_t doc_root_len)
{
    fephp_user_ini *e;
    time_t now = (time_t) sapi_get_request_time();

    if (!fephp_user_ini_cache_ready) {
        zend_hash_init(&fephp_user_ini_cache, 8, NULL, fephp_user_ini_dtor, 1);
        fephp_user_ini_cache_ready = 1;
    }
    e = zend_hash_str_find_ptr(&fephp_user_ini_cache, path, path_len);
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            return;
        }
        zend_hash_init(&e->config, 8, NULL, (dtor_func_t) config_zval_dtor, 1);
        zend_hash_str_update_ptr(&fephp_user_ini_cache, path, path_len, e);
    }
    if (now > e->expires) {
        zend_hash_clean(&e->config);
        if (doc_root_len > 0 && path_len >= doc_root_len && strncmp(path, doc_root, doc_root_len) == 0
            && (path[doc_root_len] == '/' || path[doc_root_len] == '\0')) {
            /* From the root down: every directory of `path` (which ends with a slash). */
            char *p = path + doc_root_len;
            while ((p = strchr(p, '/')) != NULL) {
                *p = '\0';
                php_parse_user_ini_file(path, PG(user_ini_filename), &e->config);
                *p = '/';
                p++;
            }
        } else {
            path[path_len - 1] = '\0';
            php_parse_user_ini_file(path, PG(user_ini_filename), &e->config);
            path[path_len - 1] = '/';
        }
        e->expires = now + PG(user_ini_cache_ttl);
    }
    php_ini_activate_config(&e->config, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

static int fephp_ops_activate(void)
{
    const fephp_request *req = fephp_current;
    const char *slash;
    char *path;
    size_t path_len;
    int user_ini = PG(user_ini_filename) && *PG(user_ini_filename);

    if (req == NULL || req->script_filename == NULL || (!user_ini && !php_ini_has_per_dir_config())) {
        return SUCCESS;
    }
    slash = strrchr(req->script_filename, '/');
    if (slash == NULL) {
        return SUCCESS;
    }
    /* The script's directory with a trailing slash. */
    path_len = (size_t) (slash - req->script_filename) + 1;
    path = emalloc(path_len + 1);
    memcpy(path, req->script_filename, path_len);
    path[path_len] = '\0';
    if (php_ini_has_per_dir_config()) {
        php_ini_activate_per_dir_config(path, path_len); /* with the slash: the last directory too */
    }
    if (user_ini) {
        const char *doc_root = fephp_getenv("DOCUMENT_ROOT", sizeof("DOCUMENT_ROOT") - 1);
        size_t doc_root_len = doc_root ? strlen(doc_root) : 0;
        if (doc_root_len > 0 && doc_root[doc_root_len - 1] == '/') {
            doc_root_len--;
        }
        if (doc_root != NULL) {
            fephp_ops_user_ini(path, path_len, doc_root, doc_root_len);
        }
    }
    efree(path);
    return SUCCESS;
}

/* ---- slow log ----------------------------------------------------------------------------- */

/*
 * fephp_slowlog_timeout: the watchdog thread notices a request running longer than the timeout
 * and calls fephp_shim_slowlog_fire(), which sets a flag and EG(vm_interrupt). At its next
 * check (a function call, a loop's jump back) the VM calls zend_interrupt_function on the PHP
 * thread itself, where the backtrace is read from EG(current_execute_data) and written, once,
 * without stopping the script (php-fpm's slowlog reads it with ptrace from another process).
 * A script blocked in a system call (sleep(), a slow query) is seen when it next runs PHP code.
 * EG(timed_out) takes precedence: the VM raises the time limit's fatal error instead.
 */
#define FEPHP_SLOWLOG_DEPTH 20
static void (*fephp_prev_interrupt)(zend_execute_data *execute_data);
static char *fephp_slowlog_path; /* NULL: stderr */
static double fephp_slowlog_seconds;

void fephp_shim_slowlog_target(const char *path, double timeout_seconds)
{
    free(fephp_slowlog_path);
    fephp_slowlog_path = path && *path ? strdup(path) : NULL;
    fephp_slowlog_seconds = timeout_seconds;
}

void fephp_shim_slowlog_fire(void)
{
    zend_atomic_bool_store_ex(&fephp_slowlog_pending, true);
    zend_atomic_bool_store_ex(&EG(vm_interrupt), true);
}

static size_t fephp_slowlog_append(char *buf, size_t len, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (len >= cap) {
        return len;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return len;
    }
    return (size_t) n >= cap - len ? cap - 1 : len + (size_t) n;
}

static void fephp_slowlog_write(zend_execute_data *ex)
{
    char buf[8192];
    char when[64];
    size_t len = 0;
    int depth = 0;
    time_t now = time(NULL);
    struct tm tm;
    const fephp_request *req = fephp_current;
    zend_execute_data *e;

    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%d-%b-%Y %H:%M:%S %Z", &tm);
    len = fephp_slowlog_append(buf, len, sizeof buf, "\n[%s]  [fe-php embedded] pid %ld\nscript_filename = %s\n", when,
                               (long) getpid(), req && req->script_filename ? req->script_filename : "?");
    len = fephp_slowlog_append(buf, len, sizeof buf, "request_uri = %s\nslower than %.3fs; innermost frame first:\n",
                               req && req->request_uri ? req->request_uri : "?", fephp_slowlog_seconds);
    for (e = ex; e != NULL; e = e->prev_execute_data) {
        zend_function *f = e->func;
        const char *cls = "", *sep = "", *name = "{main}";
        if (f == NULL) {
            continue;
        }
        if (depth == FEPHP_SLOWLOG_DEPTH) {
            len = fephp_slowlog_append(buf, len, sizeof buf, "[...] (more frames; depth limit %d)\n", FEPHP_SLOWLOG_DEPTH);
            break;
        }
        if (f->common.function_name) {
            name = ZSTR_VAL(f->common.function_name);
            if (f->common.scope) {
                cls = ZSTR_VAL(f->common.scope->name);
                sep = "::";
            }
        }
        if (ZEND_USER_CODE(f->type)) {
            len = fephp_slowlog_append(buf, len, sizeof buf, "[%d] %s%s%s%s %s:%u\n", depth, cls, sep, name,
                                       f->common.function_name ? "()" : "", ZSTR_VAL(f->op_array.filename),
                                       e->opline ? e->opline->lineno : 0);
        } else {
            len = fephp_slowlog_append(buf, len, sizeof buf, "[%d] %s%s%s() [internal function]\n", depth, cls, sep, name);
        }
        depth++;
    }
    if (fephp_slowlog_path) {
        int fd = open(fephp_slowlog_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            (void) !write(fd, buf, len);
            close(fd);
        } else {
            static const char msg[] = "fe-php: cannot open the slow log file";
            fephp_log_message(msg, 3);
        }
    } else {
        (void) !write(STDERR_FILENO, buf, len);
    }
}

static void fephp_ops_interrupt(zend_execute_data *execute_data)
{
    if (zend_atomic_bool_exchange_ex(&fephp_slowlog_pending, false) && fephp_current != NULL) {
        fephp_slowlog_write(EG(current_execute_data) ? EG(current_execute_data) : execute_data);
    }
    if (fephp_prev_interrupt) {
        fephp_prev_interrupt(execute_data);
    }
}

static void fephp_ops_slowlog_install(void)
{
    zend_atomic_bool_store_ex(&fephp_slowlog_pending, false);
    fephp_prev_interrupt = zend_interrupt_function;
    zend_interrupt_function = fephp_ops_interrupt;
}

/* ---- worker mode (worker.c) ------------------------------------------------------------------- */

void fephp_shim_enter_request(const fephp_request *req)
{
    fephp_current = req;
    fephp_finished = 0;
    fephp_fill_request_info(req);
}

void fephp_shim_arm_timer(int64_t seconds)
{
    if (fephp_cb.set_timer) {
        fephp_cb.set_timer(seconds);
    }
}
