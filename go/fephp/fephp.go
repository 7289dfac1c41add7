// Package fephp serves PHP from Go through fe-php's C API (libfephp): PHP-FPM over FastCGI
// or embedded libphp, chosen by a config.toml document.
//
// An *Engine is an http.Handler:
//
//	engine, err := fephp.NewEngine(`
//	[server]
//	document_root = "/srv/app"
//	[php]
//	use_fpm = true
//	fpm_socket = "unix:/run/php/php8.2-fpm.sock"
//	`)
//	if err != nil { log.Fatal(err) }
//	defer engine.Close()
//	log.Fatal(http.ListenAndServe(":8080", engine))
//
// The response body streams from PHP into the http.ResponseWriter as PHP produces it. A
// request that cannot reach PHP gets the status nginx would give (502 FPM down, 503
// overloaded, 504 timeout, 404 no such script).
//
// Building needs pkg-config to find fephp (scripts/install-capi.sh PREFIX, then
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig and, at run time, LD_LIBRARY_PATH=PREFIX/lib).
package fephp

/*
#cgo pkg-config: fephp
#include <fephp.h>
#include <stdlib.h>

// Defined in callbacks.go (//export).
extern int fephpGoOnHead(void *userdata, fephp_response *response);
extern int fephpGoOnBodyChunk(void *userdata, uint8_t *data, size_t len);

// The last error is thread-local and a goroutine may change OS threads between two cgo
// calls: these wrappers read it in the same C call that failed.
static fephp_result fephp_go_engine_new(const char *toml, size_t len, fephp_engine **out, char *err, size_t err_len) {
	fephp_result r = fephp_engine_new_from_toml(toml, len, out);
	if (r != FEPHP_OK) fephp_last_error(err, err_len);
	return r;
}

static fephp_result fephp_go_execute(const fephp_engine *engine, fephp_request *req, uintptr_t handle,
                                     char *err, size_t err_len) {
	fephp_write_callbacks cb = {
		(fephp_head_callback)fephpGoOnHead,
		(fephp_body_chunk_callback)fephpGoOnBodyChunk,
	};
	fephp_result r = fephp_execute(engine, req, &cb, (void *)handle, NULL);
	if (r != FEPHP_OK) fephp_last_error(err, err_len);
	return r;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"
)

// Code is a fephp_result value from fephp.h.
type Code int

// The fephp_result codes a Go caller can meet.
const (
	CodeNullArgument    Code = C.FEPHP_ERR_NULL_ARGUMENT
	CodeInvalidUTF8     Code = C.FEPHP_ERR_INVALID_UTF8
	CodeConfig          Code = C.FEPHP_ERR_CONFIG
	CodeAlreadyEmbedded Code = C.FEPHP_ERR_ALREADY_EMBEDDED
	CodePanic           Code = C.FEPHP_ERR_PANIC
	CodeInvalidArgument Code = C.FEPHP_ERR_INVALID_ARGUMENT
	CodeBackendStart    Code = C.FEPHP_ERR_BACKEND_START
	CodeAborted         Code = C.FEPHP_ERR_ABORTED
	CodeBodyTruncated   Code = C.FEPHP_ERR_BODY_TRUNCATED
)

// Error is a failed fe-php call: the fephp_result code and fephp_last_error's message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("fephp: %s (code %d)", e.Message, int(e.Code)) }

// ErrClosed is returned (and answered with 503 by ServeHTTP) after Close.
var ErrClosed = errors.New("fephp: engine is closed")

const errBufLen = 1024

func newError(code C.fephp_result, buf []byte) *Error {
	msg := string(buf)
	if i := strings.IndexByte(msg, 0); i >= 0 {
		msg = msg[:i]
	}
	return &Error{Code: Code(code), Message: msg}
}

// Version is the version of the linked libfephp.
func Version() string { return C.GoString(C.fephp_version()) }

// Engine serves HTTP requests by running PHP. It is safe for concurrent use.
type Engine struct {
	mu  sync.RWMutex // ServeHTTP holds it shared, Close exclusively
	ptr *C.fephp_engine
}

// NewEngine starts an engine from a config.toml document (see config.toml in fe-php for every
// key). Relative paths are relative to the working directory. A refused config is an *Error
// with Code CodeConfig whose message names the key.
func NewEngine(tomlConfig string) (*Engine, error) {
	ctoml := C.CString(tomlConfig)
	defer C.free(unsafe.Pointer(ctoml))
	errBuf := make([]byte, errBufLen)
	var ptr *C.fephp_engine
	r := C.fephp_go_engine_new(ctoml, C.size_t(len(tomlConfig)), &ptr, (*C.char)(unsafe.Pointer(&errBuf[0])), errBufLen)
	if r != C.FEPHP_OK {
		return nil, newError(r, errBuf)
	}
	return &Engine{ptr: ptr}, nil
}

// Close waits for the requests being served, then frees the engine (its threads, its FastCGI
// connections). Further requests get 503. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ptr != nil {
		C.fephp_engine_free(e.ptr)
		e.ptr = nil
	}
	return nil
}

// stream carries one response from the C callbacks into the ResponseWriter.
type stream struct {
	w         http.ResponseWriter
	wroteHead bool
	writeErr  error
	panicked  interface{}
}

// ServeHTTP runs the PHP script the request names and streams its response into w.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.ptr == nil {
		http.Error(w, ErrClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	req, err := newRequest(r)
	if err != nil {
		http.Error(w, "400 Bad Request", http.StatusBadRequest)
		return
	}
	st := &stream{w: w}
	handle := cgo.NewHandle(st)
	defer handle.Delete()
	errBuf := make([]byte, errBufLen)
	// req is consumed by fephp_execute whatever happens.
	res := C.fephp_go_execute(e.ptr, req, C.uintptr_t(handle), (*C.char)(unsafe.Pointer(&errBuf[0])), errBufLen)
	if st.panicked != nil {
		panic(st.panicked) // re-raised here: a Go panic must not unwind through Rust frames
	}
	if res == C.FEPHP_OK {
		return
	}
	if !st.wroteHead {
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		return
	}
	if st.writeErr == nil {
		// Head and part of the body were sent, then PHP's side failed: close the connection
		// so the client sees a truncated response instead of a short "complete" one.
		panic(http.ErrAbortHandler)
	}
}

// newRequest builds a fephp_request from r (method, raw target, headers, body, addresses).
func newRequest(r *http.Request) (*C.fephp_request, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	cmethod, ctarget := C.CString(r.Method), C.CString(target)
	defer C.free(unsafe.Pointer(cmethod))
	defer C.free(unsafe.Pointer(ctarget))
	var req *C.fephp_request
	if C.fephp_request_new(cmethod, ctarget, &req) != C.FEPHP_OK {
		return nil, errors.New("fephp: invalid method or target")
	}
	ok := addHeader(req, "Host", r.Host)
	for name, values := range r.Header {
		if name == "Content-Length" || name == "Transfer-Encoding" {
			continue // the body's length is passed with the body
		}
		for _, v := range values {
			ok = ok && addHeader(req, name, v)
		}
	}
	if data, n := cbytes(body); n > 0 {
		ok = ok && C.fephp_request_set_body(req, data, n) == C.FEPHP_OK
	}
	if !ok {
		C.fephp_request_free(req)
		return nil, errors.New("fephp: invalid request header")
	}
	if r.RemoteAddr != "" {
		caddr := C.CString(r.RemoteAddr)
		C.fephp_request_set_remote_addr(req, caddr) // not ip:port (e.g. a pipe): left unset
		C.free(unsafe.Pointer(caddr))
	}
	if r.TLS != nil {
		C.fephp_request_set_https(req, true)
	}
	return req, nil
}

// cbytes points C at b for the duration of one call (nil for an empty slice).
func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

func addHeader(req *C.fephp_request, name, value string) bool {
	n, nlen := cbytes([]byte(name))
	v, vlen := cbytes([]byte(value))
	return C.fephp_request_add_header(req, n, nlen, v, vlen) == C.FEPHP_OK
}
