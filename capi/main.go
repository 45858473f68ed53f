// Command capi is the C API of poh-holdmetrics, built with
// -buildmode=c-shared into libpoh_holdmetrics.so. It is a thin, handle-based
// adapter over package core; poh_holdmetrics.h (hand-written) is its contract.
//
// Rules every export follows: handles are checked integers from the table in
// handles.go (never Go pointers, never cgo.Handle.Value on unchecked input);
// a deferred recoverInto turns any panic into POH_ERR_INTERNAL; errors are a
// status code plus a poh_error the caller owns; no pointer to caller memory
// is kept after a call returns, and none to Go memory is handed out.
//
// Nothing here starts a goroutine, a listener or a signal handler the caller
// did not ask for: poh_aggregator_start_gc starts one goroutine, and
// poh_aggregator_open the durable store's two (log flusher, snapshotter),
// each on request and each stopped by poh_free (durable.go).
package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

// version is the library version, kept equal to the Python package's
// (python/poh_holdmetrics checks it).
const version = "0.1.0"

func main() {}
