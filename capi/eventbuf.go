package main

import (
	"sync"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// eventBufs recycles the []core.HoldEvent that a columnar batch is unpacked
// into: a 16,384-row chunk is 1 MiB, and allocating (and zeroing, and
// collecting) one per call cost more than a tenth of the recording time.
var eventBufs = sync.Pool{New: func() any { return new([]core.HoldEvent) }}

// maxPooledEvents keeps a huge one-off batch from pinning its buffer.
const maxPooledEvents = 1 << 17

// eventsOf unpacks cols into a pooled slice; pass the result to
// releaseEvents when the call is done with it.
func eventsOf(cols *core.Columns) ([]core.HoldEvent, error) {
	buf := eventBufs.Get().(*[]core.HoldEvent)
	evs, err := cols.Events((*buf)[:0])
	*buf = evs
	return evs, err
}

// releaseEvents clears the events (their ids point into the caller's
// buffers, which must not be reachable after the call) and pools the slice.
func releaseEvents(evs []core.HoldEvent) {
	if cap(evs) == 0 || cap(evs) > maxPooledEvents {
		return
	}
	clear(evs) // beyond len it is already zero: every release clears what it used
	evs = evs[:0]
	eventBufs.Put(&evs)
}
