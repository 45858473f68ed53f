// Package core is the one definition of poh-holdmetrics' semantics: the
// HoldEvent model and its validation, the hold score, and the concurrent,
// sharded Aggregator with its Prometheus collectors.
//
// Everything else (the C API in capi/, the Python package through it, and
// the daemon) is a thin adapter over this package. core uses no cgo, never
// touches prometheus.DefaultRegisterer, installs no signal handlers and
// starts no goroutine the caller did not ask for (see Aggregator.StartGC).
//
// Time is whole Unix seconds in [MinTime, MaxTime]; "now" is always a
// parameter so that every result is reproducible.
package core
