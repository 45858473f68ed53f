package core

// neumaier is a compensated (Neumaier / improved Kahan–Babuška) running sum.
// Terms are added in input order; the result is within about one ulp of the
// exact sum for the non-negative terms scores are made of. The Python
// fallback implements the same recurrence, so both give identical bits.
type neumaier struct {
	sum, comp float64
}

func (k *neumaier) add(x float64) {
	t := k.sum + x
	if k.sum >= x || k.sum <= -x { // |sum| >= |x| without math.Abs calls
		k.comp += (k.sum - t) + x
	} else {
		k.comp += (x - t) + k.sum
	}
	k.sum = t
}

// addNonNeg is add for x >= 0 added to a sum >= 0 (every score term): the
// same arithmetic with one comparison instead of two, branch-free on the
// accumulate path.
func (k *neumaier) addNonNeg(x float64) {
	t := k.sum + x
	if k.sum >= x {
		k.comp += (k.sum - t) + x
	} else {
		k.comp += (x - t) + k.sum
	}
	k.sum = t
}

func (k *neumaier) value() float64 { return k.sum + k.comp }

// ScoreOptions says what Score and ScoreColumns compute. Now is required;
// the zero value of every other field means "none".
type ScoreOptions struct {
	// Now is the time the holds are scored up to (validated).
	Now int64
	// Window clips every hold to [Window.Start, Window.End). Nil: no window.
	Window *Window
	// TWAB divides the windowed score by the window's elapsed time,
	// min(Window.End, Now) − Window.Start: the time-weighted average
	// balance. It needs a Window; a window with no elapsed time is an error
	// (ReasonEmptyWindow), never a NaN. In exact mode it is the integer
	// floor of that quotient.
	TWAB bool
	// Exact scores integer weights exactly (see exact.go): the result's Int.
	Exact bool
	// Acc, when set, is the running Neumaier pair (sum, compensation) of the
	// rows of a batch scored before these (ScoreColumns in float mode; unused
	// in exact mode, where parts add exactly): the rows continue it and it
	// holds the new pair on return, so a batch scored in consecutive parts,
	// carrying Acc, gives the bits of scoring it whole (a TWAB then divides
	// the whole so far). On an error it is left as it was.
	Acc *[2]float64
}

// Value is a score: in float mode Float; in exact mode Int is the exact
// integer (a TWAB's floor) and Float its nearest float64.
type Value struct {
	Float float64
	Int   *Int
}

func floatValue(f float64) Value { return Value{Float: f} }

func exactValue(x Int) Value { return Value{Float: x.Float(), Int: &x} }

// window is the window to clip to (All for none), after checking now, the
// window and, for a TWAB, its elapsed time, in that order. d is the TWAB
// denominator (0 when not a TWAB).
func (o *ScoreOptions) window() (w Window, d int64, err error) {
	if err := ValidateTime(-1, "now", o.Now); err != nil {
		return w, 0, err
	}
	w = All
	if o.Window != nil {
		w = *o.Window
		if err := w.Validate(); err != nil {
			return w, 0, err
		}
	}
	if o.TWAB {
		if o.Window == nil {
			return w, 0, &ValidationError{-1, "window", "none", ReasonEmpty, "a TWAB needs a window"}
		}
		if d, err = w.elapsed(o.Now); err != nil {
			return w, 0, err
		}
	}
	return w, d, nil
}

// finish turns a windowed score into the result o asks for.
func (o *ScoreOptions) finish(s Value, d int64) Value {
	switch {
	case !o.TWAB:
		return s
	case s.Int != nil:
		return exactValue(s.Int.DivFloor(uint64(d)))
	}
	return floatValue(s.Float / float64(d))
}

// Score is the hold score of a batch at o.Now:
//
//	Σ max(0, min(end ?? now, now, t1) − max(start, t0)) × weight
//
// (t0, t1 the window's ends, or every valid time without one), summed in
// input order with compensated summation; an empty batch scores 0. With
// o.TWAB it is divided by the window's elapsed time. Now, the window and
// every event are validated first; the first invalid one is returned as a
// *ValidationError.
func Score(events []HoldEvent, o ScoreOptions) (Value, error) {
	w, d, err := o.window()
	if err != nil {
		return Value{}, err
	}
	if o.Exact {
		var x Int
		for i := range events {
			e := &events[i]
			if err := e.ValidateExact(i); err != nil {
				return Value{}, err
			}
			wx, _ := e.weightExact(i)
			x.addMul(&wx, uint64(w.held(e.Start, e.End, e.HasEnd, o.Now)))
		}
		return o.finish(exactValue(x), d), nil
	}
	var acc neumaier
	for i := range events {
		e := &events[i]
		if !e.valid() { // the slow path says exactly what is wrong
			return Value{}, e.Validate(i)
		}
		acc.addNonNeg(float64(w.held(e.Start, e.End, e.HasEnd, o.Now)) * e.Weight)
	}
	return o.finish(floatValue(acc.value()), d), nil
}

// Columns is a batch in columnar (Arrow-like) form: the layout the C API and
// the Python package pass across the boundary without copying.
//
// Start is required. End and HasEnd go together: HasEnd[i] == 0 means event i
// is still open (End[i] is ignored); a nil HasEnd means every event has an
// end, and a nil End means every event is open. A nil Weight means 1.0 for
// every event. Ids are optional for scoring and required for recording.
type Columns struct {
	Start  []int64
	End    []int64
	HasEnd []uint8
	Weight []float64
	// Wei is exact mode's weight column: 32 bytes big-endian per row (as
	// cryo writes u256). Nil: the weights are Weight's (integers in exact
	// mode) or 1. Only in exact mode.
	Wei    []byte
	Token  IDColumn
	Holder IDColumn
}

// IDColumn is a column of UTF-8 strings in Arrow's layout: string i is
// Data[Offsets[i]:Offsets[i+1]], so Offsets has one more entry than rows.
type IDColumn struct {
	Data    []byte
	Offsets []int64
}

// Len is the number of strings in the column (0 for an absent column).
func (c IDColumn) Len() int {
	if len(c.Offsets) == 0 {
		return 0
	}
	return len(c.Offsets) - 1
}

// Len is the number of rows.
func (c *Columns) Len() int { return len(c.Start) }

// CheckLengths verifies that the column lengths and id offsets agree (values
// are checked where they are used).
func (c *Columns) CheckLengths() error { return c.check(false) }

// check verifies that the column lengths agree; it does not look at values.
func (c *Columns) check(needIDs bool) error {
	n := len(c.Start)
	bad := func(name string, got int) error {
		return &ValidationError{-1, name, itoa(got), ReasonOutOfRange,
			"column length differs from start's " + itoa(n)}
	}
	if c.End != nil && len(c.End) != n {
		return bad("end", len(c.End))
	}
	if c.HasEnd != nil && len(c.HasEnd) != n {
		return bad("has_end", len(c.HasEnd))
	}
	if c.HasEnd != nil && c.End == nil {
		return bad("end", 0)
	}
	if c.Weight != nil && len(c.Weight) != n {
		return bad("weight", len(c.Weight))
	}
	if c.Wei != nil && len(c.Wei) != 32*n {
		return &ValidationError{-1, "weight", itoa(len(c.Wei)) + " bytes", ReasonOutOfRange,
			"exact weight column is not 32 bytes per row for " + itoa(n) + " rows"}
	}
	if c.Wei != nil && c.Weight != nil {
		return &ValidationError{-1, "weight", "two columns", ReasonOutOfRange,
			"both float and exact weights given: pass one weight column"}
	}
	for _, col := range []struct {
		name string
		c    IDColumn
	}{{"token_id", c.Token}, {"holder_id", c.Holder}} {
		if col.c.Offsets == nil {
			if needIDs {
				return &ValidationError{-1, col.name, "absent", ReasonEmpty, "column is required"}
			}
			continue
		}
		if col.c.Len() != n {
			return bad(col.name+" offsets", len(col.c.Offsets))
		}
		if err := checkOffsets(col.name, col.c); err != nil {
			return err
		}
	}
	return nil
}

func checkOffsets(name string, c IDColumn) error {
	prev := int64(0)
	if c.Offsets[0] != 0 {
		return &ValidationError{-1, name + " offsets", itoa64(c.Offsets[0]), ReasonOutOfRange, "must start at 0"}
	}
	for i, o := range c.Offsets[1:] {
		if o < prev || o > int64(len(c.Data)) {
			return &ValidationError{i, name + " offsets", itoa64(o), ReasonOutOfRange,
				"must be non-decreasing and within the data buffer of " + itoa(len(c.Data)) + " bytes"}
		}
		prev = o
	}
	return nil
}

// ScoreColumns is Score over columns. It validates start, end and weight (and
// the ids, when present) in the same single pass that sums.
func ScoreColumns(c *Columns, o ScoreOptions) (Value, error) {
	win, d, err := o.window()
	if err != nil {
		return Value{}, err
	}
	if o.Exact {
		if err := c.check(false); err != nil {
			return Value{}, err
		}
		var x Int
		for i := range c.Start {
			e := c.row(i)
			if err := c.validateRow(i, true); err != nil {
				return Value{}, err
			}
			wx, _ := e.weightExact(i)
			x.addMul(&wx, uint64(win.held(e.Start, e.End, e.HasEnd, o.Now)))
		}
		return o.finish(exactValue(x), d), nil
	}
	if c.Wei != nil {
		return Value{}, errExactWeight(-1)
	}
	var acc [2]float64
	if o.Acc != nil {
		acc = *o.Acc
	}
	if err := scoreColumns(c, o.Now, win, &acc); err != nil {
		return Value{}, err
	}
	if o.Acc != nil {
		*o.Acc = acc
	}
	return o.finish(floatValue(acc[0]+acc[1]), d), nil
}

// scoreColumns adds c's rows to the Neumaier pair acc (left as it was on an
// error).
func scoreColumns(c *Columns, now int64, win Window, acc *[2]float64) error {
	if err := c.check(false); err != nil {
		return err
	}
	if c.Token.Offsets != nil || c.Holder.Offsets != nil {
		// With ids present, validate whole rows first so that the error is
		// the lowest-index bad event, fields in contract order, as in Score.
		for i := range c.Start {
			if err := c.validateRow(i, false); err != nil {
				return err
			}
		}
	}
	start, end, hasEnd, weight := c.Start, c.End, c.HasEnd, c.Weight
	if end != nil && hasEnd != nil && weight != nil && len(end) == len(start) &&
		len(hasEnd) == len(start) && len(weight) == len(start) {
		return scoreFull(start, end, hasEnd, weight, now, win, acc)
	}
	t0, t1 := win.Start, win.End
	k := neumaier{acc[0], acc[1]}
	for i, s := range start {
		if uint64(s) > uint64(MaxTime) {
			return ValidateTime(i, "start", s)
		}
		stop := now
		if end != nil && (hasEnd == nil || hasEnd[i] != 0) {
			e := end[i]
			if e < s || e > MaxTime {
				return validateSpan(i, s, e, true)
			}
			stop = min(e, now)
		}
		stop = min(stop, t1)
		s = max(s, t0)
		w := 1.0
		if weight != nil {
			w = weight[i]
			if !(w >= 0 && w <= MaxWeight) { // also catches NaN
				return ValidateWeight(i, w)
			}
		}
		k.addNonNeg(float64(max(stop-s, 0)) * w)
	}
	acc[0], acc[1] = k.sum, k.comp
	return nil
}

// at returns string i without copying: the result aliases Data and must not
// be retained past the caller's use of the buffer.
func (c IDColumn) at(i int) string {
	b := c.Data[c.Offsets[i]:c.Offsets[i+1]]
	return unsafeString(b)
}

// Events converts a validated-length columnar batch into HoldEvents whose id
// strings alias the column buffers (see HoldEvent on why that is safe for the
// aggregator). It returns an error if the columns are inconsistent or the
// ids are absent; values are validated later by the aggregator.
func (c *Columns) Events(dst []HoldEvent) ([]HoldEvent, error) {
	if err := c.check(true); err != nil {
		return dst, err
	}
	for i := range c.Start {
		dst = append(dst, c.row(i))
	}
	return dst, nil
}

// row builds event i; absent id columns give empty ids.
func (c *Columns) row(i int) HoldEvent {
	e := HoldEvent{Start: c.Start[i], Weight: 1}
	if c.Token.Offsets != nil {
		e.TokenID = c.Token.at(i)
	}
	if c.Holder.Offsets != nil {
		e.HolderID = c.Holder.at(i)
	}
	if c.End != nil && (c.HasEnd == nil || c.HasEnd[i] != 0) {
		e.End, e.HasEnd = c.End[i], true
	}
	if c.Weight != nil {
		e.Weight = c.Weight[i]
	}
	if c.Wei != nil {
		e.Wei = (*Wei)(c.Wei[32*i : 32*i+32])
	}
	return e
}

// validateRow checks row i like HoldEvent.Validate (ValidateExact when
// exact), skipping absent id columns.
func (c *Columns) validateRow(i int, exact bool) *ValidationError {
	e := c.row(i)
	if c.Token.Offsets != nil {
		if err := ValidateID(i, "token_id", e.TokenID); err != nil {
			return err
		}
	}
	if c.Holder.Offsets != nil {
		if err := ValidateID(i, "holder_id", e.HolderID); err != nil {
			return err
		}
	}
	if err := validateSpan(i, e.Start, e.End, e.HasEnd); err != nil {
		return err
	}
	if exact {
		_, err := e.weightExact(i)
		return err
	}
	return ValidateWeight(i, e.Weight)
}

// scoreFull is the hot loop for the layout the C API and Python pass: every
// column present. On amd64 with AVX2 an assembly kernel (score_amd64.s) takes
// the rows in fours and scoreRows finishes the tail; the kernel gives the same
// bits as scoreRows, and when it sees a row that may be invalid the batch is
// re-run by scoreRows alone, which names the first bad row.
func scoreFull(start, end []int64, hasEnd []uint8, weight []float64, now int64, win Window, acc *[2]float64) error {
	end, hasEnd, weight = end[:len(start)], hasEnd[:len(start)], weight[:len(start)]
	now = min(now, win.End) // min(end ?? now, now, t1) == min(end ?? now', now') with now' = min(now, t1)
	k := *acc
	done, maybeBad := scoreKernel(start, end, hasEnd, weight, now, win.Start, &k)
	if maybeBad {
		done, k = 0, *acc
	}
	sum, comp, err := scoreRows(start[done:], end[done:], hasEnd[done:], weight[done:], now, win.Start, k[0], k[1], done)
	if err != nil {
		return err
	}
	acc[0], acc[1] = sum, comp
	return nil
}

// scoreRows continues the Neumaier pair (sum, comp) over rows that are
// numbered from base, validating each with one well-predicted branch; the
// error path re-derives the precise message. now is already clipped to the
// window's end.
func scoreRows(start, end []int64, hasEnd []uint8, weight []float64, now, t0 int64, sum, comp float64, base int) (float64, float64, error) {
	end, hasEnd, weight = end[:len(start)], hasEnd[:len(start)], weight[:len(start)]
	for i, s := range start {
		e, w := end[i], weight[i]
		stop := now
		badEnd := false
		if hasEnd[i] != 0 {
			badEnd = e < s || e > MaxTime
			stop = min(e, now)
		}
		if uint64(s) > uint64(MaxTime) || badEnd || !(w >= 0 && w <= MaxWeight) {
			if err := validateSpan(base+i, s, e, hasEnd[i] != 0); err != nil {
				return 0, 0, err
			}
			return 0, 0, ValidateWeight(base+i, w)
		}
		// The Neumaier recurrence of addNonNeg, inlined on locals so that
		// the two accumulators stay in registers.
		x := float64(max(stop-max(s, t0), 0)) * w
		t := sum + x
		if sum >= x {
			comp += (sum - t) + x
		} else {
			comp += (x - t) + sum
		}
		sum = t
	}
	return sum, comp, nil
}
