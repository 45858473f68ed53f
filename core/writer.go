package core

// Writer is the write side of an Aggregator: every front end (the C API, the
// daemon) holds exactly one and sends every write through it, so that none
// of them branches on "durable or in memory". Two implementations exist:
// Memory (the aggregator itself) and store.Store (each write applied to the
// aggregator and appended to a log, in one order).
type Writer interface {
	// Record applies a batch at now (see Aggregator.Record) and returns how
	// many events were applied and a Ticket. The events are acknowledged
	// once Wait(ticket) returns nil; a pipelining caller keeps reading
	// meanwhile.
	Record(now int64, events []HoldEvent, o RecordOptions) (int, Ticket, error)
	// Wait blocks until the write of t is durable under the writer's
	// promise (at once for Memory). Ticket 0 is always done.
	Wait(t Ticket) error
	// CloseHold, see Aggregator.CloseHold; acknowledged when it returns.
	CloseHold(now int64, token, holder string, at int64) (int, error)
	// GC, see Aggregator.GC.
	GC(now int64) (int, error)
	// Close flushes and releases what the writer owns (not the aggregator:
	// its owner closes that next). Later writes fail.
	Close() error
}

// Ticket identifies a write for Writer.Wait.
type Ticket uint64

// Memory is the in-memory Writer of a: writes go straight to it, and are
// acknowledged when applied.
func Memory(a *Aggregator) Writer { return memory{a} }

type memory struct{ a *Aggregator }

func (m memory) Record(now int64, events []HoldEvent, o RecordOptions) (int, Ticket, error) {
	n, err := m.a.Record(now, events, o)
	return n, 0, err
}

func (m memory) Wait(Ticket) error { return nil }

func (m memory) CloseHold(now int64, token, holder string, at int64) (int, error) {
	return m.a.CloseHold(now, token, holder, at)
}

func (m memory) GC(now int64) (int, error) { return m.a.GC(now) }

func (m memory) Close() error { return nil }

// RecordAndWait records through w and returns once the write is
// acknowledged: the count and the per-event errors of Record, or the error
// that kept the write from being acknowledged (then the count is 0).
func RecordAndWait(w Writer, now int64, events []HoldEvent, o RecordOptions) (int, error) {
	n, t, err := w.Record(now, events, o)
	if n > 0 {
		if werr := w.Wait(t); werr != nil {
			return 0, werr
		}
	}
	return n, err
}

// RecordEvent records one event through w and returns once it is
// acknowledged: RecordAndWait of the batch {e}, strict. The in-memory writer
// takes it without making a batch of it (the one-event path of the C API).
func RecordEvent(w Writer, now int64, e HoldEvent) error {
	if m, ok := w.(memory); ok {
		_, err := m.a.recordOne(now, &e, RecordOptions{})
		return err
	}
	_, err := RecordAndWait(w, now, []HoldEvent{e}, RecordOptions{})
	return err
}
