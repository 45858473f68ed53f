package core

import "fmt"

// Window is the half-open campaign period [Start, End) in Unix seconds. A
// window clips every hold: a hold counts only for the seconds it overlaps the
// window (and, as always, only up to now).
type Window struct {
	Start, End int64
}

// All is the window that clips nothing: every valid time lies in it, so
// scoring in All is the unwindowed score.
var All = Window{MinTime, MaxTime}

// ReasonEmptyWindow: a TWAB over a window with no elapsed time.
const ReasonEmptyWindow Reason = "empty_window"

func (w Window) String() string { return fmt.Sprintf("[%d, %d)", w.Start, w.End) }

// Validate checks MinTime ≤ Start ≤ End ≤ MaxTime. Errors name both ends.
func (w Window) Validate() *ValidationError {
	if w.Start < MinTime || w.Start > MaxTime || w.End < MinTime || w.End > MaxTime {
		return &ValidationError{-1, "window", w.String(), ReasonOutOfRange,
			fmt.Sprintf("start %d and end %d must lie in [%d, %d]", w.Start, w.End, MinTime, MaxTime)}
	}
	if w.End < w.Start {
		return &ValidationError{-1, "window", w.String(), ReasonEndBeforeStart,
			fmt.Sprintf("end %d is before start %d", w.End, w.Start)}
	}
	return nil
}

// held is max(0, min(end ?? now, now, w.End) − max(start, w.Start)): the
// seconds of one hold that count, in int64 (no overflow in the valid range).
func (w Window) held(start, end int64, hasEnd bool, now int64) int64 {
	stop := min(now, w.End)
	if hasEnd {
		stop = min(stop, end)
	}
	return max(stop-max(start, w.Start), 0)
}

// elapsed is the TWAB denominator, min(w.End, now) − w.Start; an error when
// it is not positive (an empty window, or one that starts after now).
func (w Window) elapsed(now int64) (int64, error) {
	if err := w.Validate(); err != nil {
		return 0, err
	}
	d := min(w.End, now) - w.Start
	if d <= 0 {
		return 0, &ValidationError{-1, "window", w.String(), ReasonEmptyWindow,
			fmt.Sprintf("has no elapsed time at now %d (start %d, end %d)", now, w.Start, w.End)}
	}
	return d, nil
}
