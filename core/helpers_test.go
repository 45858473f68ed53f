package core

// Shorthands of the tests (they read like the calls they replace).

// recordNow records events strictly at the aggregator's clock.
func recordNow(a *Aggregator, events ...HoldEvent) error {
	_, err := a.Record(a.Now(), events, RecordOptions{})
	return err
}

// snapshot is every row at now.
func snapshot(a *Aggregator, now int64) ([]HolderStat, error) { return a.Query(Query{Now: now}) }

// topN is the first n rows at now (optionally for one token); n == 0 is no
// row (Query's N 0 means every row).
func topN(a *Aggregator, n int, now int64, token string) ([]HolderStat, error) {
	if n == 0 {
		if _, err := a.Query(Query{Now: now, Token: token, N: 1}); err != nil {
			return nil, err
		}
		return []HolderStat{}, nil
	}
	return a.Query(Query{Now: now, Token: token, N: n})
}

// scoreAt is Score's float at now, no window.
func scoreAt(events []HoldEvent, now int64) (float64, error) {
	return scoreF(events, ScoreOptions{Now: now})
}

// scoreColumnsAt is ScoreColumns' float at now, no window.
func scoreColumnsAt(c *Columns, now int64) (float64, error) {
	return scoreColumnsF(c, ScoreOptions{Now: now})
}

// scoreF is Score's float.
func scoreF(events []HoldEvent, o ScoreOptions) (float64, error) {
	v, err := Score(events, o)
	return v.Float, err
}

// scoreColumnsF is ScoreColumns' float.
func scoreColumnsF(c *Columns, o ScoreOptions) (float64, error) {
	v, err := ScoreColumns(c, o)
	return v.Float, err
}

// gcStep is the in-memory collection step of StartGC.
func gcStep(a *Aggregator) func(int64) {
	w := Memory(a)
	return func(now int64) { _, _ = w.GC(now) }
}
