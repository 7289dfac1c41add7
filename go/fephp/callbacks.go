package fephp

/*
#include <fephp.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// The write callbacks of fephp_execute. They run on the goroutine's thread that called
// fephp_execute (the blocking API calls back on the calling thread). A Go panic must not
// unwind through the Rust frames in between: it is recovered here, the request is aborted
// (non-zero return) and ServeHTTP re-raises it after fephp_execute has returned.

//export fephpGoOnHead
func fephpGoOnHead(userdata unsafe.Pointer, response *C.fephp_response) (abort C.int) {
	st := cgo.Handle(uintptr(userdata)).Value().(*stream)
	defer func() {
		if p := recover(); p != nil {
			st.panicked = p
			abort = 1
		}
	}()
	h := st.w.Header()
	n := int(C.fephp_response_header_count(response))
	for i := 0; i < n; i++ {
		var name, value *C.char
		var nameLen, valueLen C.size_t
		if C.fephp_response_header_at(response, C.size_t(i), &name, &nameLen, &value, &valueLen) != C.FEPHP_OK {
			continue
		}
		h.Add(C.GoStringN(name, C.int(nameLen)), C.GoStringN(value, C.int(valueLen)))
	}
	st.w.WriteHeader(int(C.fephp_response_status(response)))
	st.wroteHead = true
	return 0
}

//export fephpGoOnBodyChunk
func fephpGoOnBodyChunk(userdata unsafe.Pointer, data *C.uint8_t, length C.size_t) (abort C.int) {
	st := cgo.Handle(uintptr(userdata)).Value().(*stream)
	defer func() {
		if p := recover(); p != nil {
			st.panicked = p
			abort = 1
		}
	}()
	// Borrowed for this call only; ResponseWriter.Write does not retain it.
	if _, err := st.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(data)), int(length))); err != nil {
		st.writeErr = err // the client went away: abort the request at PHP
		return 1
	}
	return 0
}
