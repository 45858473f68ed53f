package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/debug"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// Status codes, mirrored from the header.
const (
	statusOK              = C.POH_OK
	statusInvalidEvent    = C.POH_ERR_INVALID_EVENT
	statusInvalidArgument = C.POH_ERR_INVALID_ARGUMENT
	statusBadHandle       = C.POH_ERR_BAD_HANDLE
	statusNoOpenHold      = C.POH_ERR_NO_OPEN_HOLD
	statusBufferTooSmall  = C.POH_ERR_BUFFER_TOO_SMALL
	statusState           = C.POH_ERR_STATE
	statusInternal        = C.POH_ERR_INTERNAL
	statusNoHistory       = C.POH_ERR_NO_HISTORY
	statusLocked          = C.POH_ERR_LOCKED
	statusStore           = C.POH_ERR_STORE
	statusCampaign        = C.POH_ERR_CAMPAIGN
)

// statusError is an error with its status code, for failures found here
// rather than in core.
type statusError struct {
	code C.int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func argError(format string, args ...any) error {
	return &statusError{statusInvalidArgument, fmt.Sprintf(format, args...)}
}

func tooSmall(format string, args ...any) error {
	return &statusError{statusBufferTooSmall, fmt.Sprintf(format, args...)}
}

var errBadHandle = &statusError{statusBadHandle, "invalid handle: zero, unknown, freed or of the wrong kind"}

// code is the status of err, and (for a validation error) where it was.
func code(err error) (c C.int, index int64, field, reason string) {
	var ve *core.ValidationError
	var te *core.TransferError
	var se *statusError
	switch {
	case errors.As(err, &ve):
		return statusInvalidEvent, int64(ve.Index), ve.Field, string(ve.Reason)
	case errors.As(err, &te):
		return statusInvalidEvent, int64(te.Index), te.Field, te.Reason
	case errors.As(err, &se):
		return se.code, -1, "", ""
	case errors.Is(err, core.ErrNoOpenHold):
		return statusNoOpenHold, -1, "", ""
	case errors.Is(err, core.ErrNoHistory):
		return statusNoHistory, -1, "", ""
	case errors.Is(err, core.ErrClosed), errors.Is(err, store.ErrClosed):
		return statusBadHandle, -1, "", "" // freed while this call was in flight
	case errors.Is(err, store.ErrFailed):
		return statusStore, -1, "", ""
	}
	return statusInternal, -1, "", ""
}

// status is POH_OK for nil, else fail(e, err).
func status(e *C.poh_error, err error) C.int {
	if err == nil {
		return statusOK
	}
	return fail(e, err)
}

// fail fills *e (when non-NULL) from err and returns the status code.
func fail(e *C.poh_error, err error) C.int {
	c, index, field, reason := code(err)
	if e != nil {
		e.index = C.int64_t(index)
		putString(e.field[:], field)
		putString(e.reason[:], reason)
		putString(e.message[:], err.Error())
	}
	return c
}

// putString copies s into a fixed C char array, truncated, NUL-terminated.
func putString(dst []C.char, s string) {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(dst))
	n := copy(b[:len(b)-1], s)
	b[n] = 0
}

// recoverInto is deferred by every export: a panic becomes
// POH_ERR_INTERNAL with the panic value and stack in the message.
func recoverInto(e *C.poh_error, rc *C.int) {
	if r := recover(); r != nil {
		*rc = fail(e, fmt.Errorf("internal error (please report): %v\n%s", r, debug.Stack()))
	}
}
