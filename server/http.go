package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// HTTP JSON API. Field names are the Python API's: token_id, holder_id,
// start and end (Unix seconds, floats floored, or RFC 3339), weight.
//
//	POST /v1/holds          one event or an array (?partial=1)  → 200 {"accepted": n[, "errors": [...]]}
//	POST /v1/holds/close    {"token_id", "holder_id"[, "at"]}   → 200 {"closed": n} | 404
//	GET  /v1/stats[?now=][&window=t0,t1]   rows in ranking order
//	GET  /v1/top?n=&token=[&now=][&window=t0,t1]
//
// window (Unix seconds or RFC 3339, [t0, t1)) clips every hold to it; it
// needs a daemon started with --history, else 400.
//	GET  /healthz /readyz /metrics
//	seed aliases: POST /hold (→ 202), GET /stats
//	with HTTPOptions.Pprof: /debug/pprof/, /debug/pprof/profile
//
// Which routes need the bearer token is the auth table's (auth.go).
//
// Errors are {"error": "...", "index", "field", "reason"} with 400 (bad
// input), 401, 404, 413 (body too large), 503 (draining).

// HTTPOptions are the optional parts of the HTTP API.
type HTTPOptions struct {
	// Pprof serves net/http/pprof: /debug/pprof/ (the index and named
	// profiles) and /debug/pprof/profile (CPU). A read in the auth table.
	Pprof bool
}

// route is one pattern of the HTTP mux; who may call it is the pattern's
// entry in the auth table (auth.go).
type route struct {
	pattern string
	handler http.Handler
}

// routes is every route the HTTP API serves: Handler registers these and
// nothing else (the auth test walks them).
func (s *Service) routes(g prometheus.Gatherer, o HTTPOptions) []route {
	rs := []route{
		{"POST /v1/holds", s.postHolds(http.StatusOK)},
		{"POST /hold", s.postHolds(http.StatusAccepted)},
		{"POST /v1/holds/close", http.HandlerFunc(s.postClose)},
		{"GET /v1/stats", http.HandlerFunc(s.getStats)},
		{"GET /stats", http.HandlerFunc(s.getStats)},
		{"GET /v1/top", http.HandlerFunc(s.getTop)},
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, why := s.Health(); !ok {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		})},
		{"GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: nil})},
	}
	if o.Pprof {
		rs = append(rs, route{"/debug/pprof/", http.HandlerFunc(pprof.Index)},
			route{"/debug/pprof/profile", http.HandlerFunc(pprof.Profile)})
	}
	return rs
}

// Handler returns the HTTP API; g serves /metrics.
func (s *Service) Handler(g prometheus.Gatherer, o HTTPOptions) http.Handler {
	return s.serveRoutes(s.routes(g, o))
}

// serveRoutes is the mux of routes, each behind its auth table entry.
func (s *Service) serveRoutes(routes []route) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.pattern, s.guardHTTP(r.pattern, r.handler))
	}
	return recoverHTTP(s, s.limitHTTP(mux))
}

func recoverHTTP(s *Service, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type httpError struct {
	Error  string `json:"error"`
	Index  *int   `json:"index,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func errorBody(err error) httpError {
	var ve *core.ValidationError
	if errors.As(err, &ve) {
		e := httpError{Error: ve.Error(), Field: ve.Field, Reason: string(ve.Reason)}
		if ve.Index >= 0 {
			i := ve.Index
			e.Index = &i
		}
		return e
	}
	return httpError{Error: err.Error()}
}

// writeError maps an error to its status code.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, core.ErrInvalidEvent), errors.Is(err, errBadRequest), errors.Is(err, core.ErrNoHistory):
		code = http.StatusBadRequest
	case errors.Is(err, core.ErrNoOpenHold):
		code = http.StatusNotFound
	case errors.Is(err, ErrDraining), errors.Is(err, store.ErrFailed), errors.Is(err, store.ErrClosed):
		code = http.StatusServiceUnavailable // the caller may retry: nothing was acknowledged
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, errorBody(err))
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// jsonEvent is one event as sent; times and weight are decoded by hand to
// accept numbers and RFC 3339 strings and to name the field on error.
type jsonEvent struct {
	TokenID  json.RawMessage `json:"token_id"`
	HolderID json.RawMessage `json:"holder_id"`
	Start    json.RawMessage `json:"start"`
	End      json.RawMessage `json:"end"`
	Weight   json.RawMessage `json:"weight"`
}

// jsonID reads an id: a JSON string whose bytes are UTF-8. encoding/json
// would turn invalid bytes (and lone surrogate escapes) into U+FFFD, merging
// distinct ids into one holder; those are invalid_utf8, as on every other
// path.
func jsonID(i int, field string, raw json.RawMessage) (string, *core.ValidationError) {
	if isNull(raw) {
		return "", nil // an empty id, reported by ValidateID
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", &core.ValidationError{Index: i, Field: field, Value: string(raw), Reason: core.ReasonEmpty,
			Detail: "must be a string"}
	}
	if !utf8.Valid(raw) || strings.ContainsRune(s, utf8.RuneError) && !literalReplacement(raw) {
		return "", &core.ValidationError{Index: i, Field: field, Value: strconv.QuoteToASCII(string(raw)),
			Reason: core.ReasonInvalidUTF8, Detail: "is not valid UTF-8 (invalid bytes or a lone surrogate escape)"}
	}
	return s, nil
}

// literalReplacement reports whether raw (valid UTF-8 JSON) spells U+FFFD
// itself, as the character or as the escape \ufffd: then a U+FFFD in the
// decoded id is the caller's, not a substitution.
func literalReplacement(raw []byte) bool {
	return bytes.ContainsRune(raw, utf8.RuneError) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func (j *jsonEvent) event(i int) (core.HoldEvent, error) {
	e := core.HoldEvent{Weight: 1}
	var verr *core.ValidationError
	if e.TokenID, verr = jsonID(i, "token_id", j.TokenID); verr != nil {
		return e, verr
	}
	if e.HolderID, verr = jsonID(i, "holder_id", j.HolderID); verr != nil {
		return e, verr
	}
	if err := core.ValidateID(i, "token_id", e.TokenID); err != nil {
		return e, err
	}
	if err := core.ValidateID(i, "holder_id", e.HolderID); err != nil {
		return e, err
	}
	if isNull(j.Start) {
		return e, &core.ValidationError{Index: i, Field: "start", Value: "null", Reason: core.ReasonEmpty, Detail: "is required"}
	}
	var err error
	if e.Start, err = ParseTime(i, "start", j.Start); err != nil {
		return e, err
	}
	if !isNull(j.End) {
		if e.End, err = ParseTime(i, "end", j.End); err != nil {
			return e, err
		}
		e.HasEnd = true
	}
	if !isNull(j.Weight) && j.Weight[0] == '"' {
		// A decimal string is an exact integer weight (exact mode, --exact).
		var s string
		if err := json.Unmarshal(j.Weight, &s); err != nil {
			return e, &core.ValidationError{Index: i, Field: "weight", Value: string(j.Weight), Reason: core.ReasonNotFinite,
				Detail: "must be a number, or a decimal string (exact mode)"}
		}
		wei, err := core.ParseWei(i, s)
		if err != nil {
			return e, err
		}
		e.Wei = wei
	} else if !isNull(j.Weight) {
		w, perr := strconv.ParseFloat(string(j.Weight), 64)
		if perr != nil {
			return e, &core.ValidationError{Index: i, Field: "weight", Value: string(j.Weight), Reason: core.ReasonNotFinite,
				Detail: "must be a finite number"}
		}
		e.Weight = w
	}
	return e, nil
}

// decodeEvents reads one event object or an array of them.
func (s *Service) decodeEvents(r *http.Request) ([]jsonEvent, error) {
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	var items []json.RawMessage
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, badRequest("invalid JSON: %v", err)
		}
	case len(body) > 0 && body[0] == '{':
		items = []json.RawMessage{body}
	default:
		return nil, badRequest("body must be a JSON event object or an array of them")
	}
	if len(items) > s.cfg.MaxBatch {
		return nil, badRequest("batch of %d events is larger than the limit %d", len(items), s.cfg.MaxBatch)
	}
	evs := make([]jsonEvent, len(items))
	for i, it := range items {
		if err := decodeStrict(it, &evs[i]); err != nil {
			return nil, badRequest("event %d: %v", i, err)
		}
	}
	return evs, nil
}

// readBody reads a request body up to limit bytes: a larger one is a
// *http.MaxBytesError (413); one that ends early or whose chunked encoding is
// broken is the caller's fault (400), never a 500.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var mbe *http.MaxBytesError
	if err != nil && !errors.As(err, &mbe) {
		return nil, badRequest("reading the body: %v", err)
	}
	return body, err
}

// decodeStrict decodes one JSON object into v; a key v has no field for is
// an error naming it (a misspelt "wieght" must not silently mean weight 1).
func decodeStrict(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown key %s (the keys are token_id, holder_id, start, end, weight)", name)
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if d.More() {
		return errors.New("invalid JSON: more than one value")
	}
	return nil
}

func (s *Service) postHolds(okCode int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := s.decodeEvents(r)
		if err != nil {
			writeError(w, err)
			return
		}
		partial := r.URL.Query().Get("partial") == "1" || r.URL.Query().Get("partial") == "true"
		events := make([]core.HoldEvent, 0, len(raw))
		var bad []*core.ValidationError // conversion failures, then the aggregator's
		var index []int
		for i := range raw {
			e, err := raw[i].event(i)
			if err != nil {
				var ve *core.ValidationError
				if !errors.As(err, &ve) {
					writeError(w, err)
					return
				}
				bad = append(bad, ve)
				continue
			}
			index = append(index, i)
			events = append(events, e)
		}
		if len(bad) > 0 && !partial {
			s.agg.CountStrictRefusal(events, len(bad))
			writeError(w, bad[0])
			return
		}
		s.agg.CountRejected(len(bad), 0)
		n, err := s.Record(events, partial)
		var be *core.BatchError
		if err != nil && !(partial && errors.As(err, &be)) {
			writeError(w, err)
			return
		}
		if be != nil {
			for _, v := range be.Errors {
				v2 := *v
				v2.Index = index[v.Index]
				bad = append(bad, &v2)
			}
		}
		slices.SortFunc(bad, func(a, b *core.ValidationError) int { return a.Index - b.Index })
		resp := struct {
			Accepted int         `json:"accepted"`
			Rejected int         `json:"rejected,omitempty"`
			Errors   []httpError `json:"errors,omitempty"`
		}{Accepted: n, Rejected: len(bad)}
		// The reply lists at most MaxRowErrors rows (the count is exact): a
		// body of bad events must not buy a reply many times its size.
		for _, v := range bad[:min(len(bad), s.cfg.MaxRowErrors)] {
			resp.Errors = append(resp.Errors, errorBody(v))
		}
		writeJSON(w, okCode, resp)
	}
}

func (s *Service) postClose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TokenID  json.RawMessage `json:"token_id"`
		HolderID json.RawMessage `json:"holder_id"`
		At       json.RawMessage `json:"at"`
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, badRequest("%v", strings.Replace(err.Error(), "start, end, weight", "at", 1)))
		return
	}
	token, verr := jsonID(-1, "token_id", req.TokenID)
	if verr != nil {
		writeError(w, verr)
		return
	}
	holder, verr := jsonID(-1, "holder_id", req.HolderID)
	if verr != nil {
		writeError(w, verr)
		return
	}
	at := int64(-1)
	if !isNull(req.At) {
		if at, err = ParseTime(-1, "at", req.At); err != nil {
			writeError(w, err)
			return
		}
		if verr := core.ValidateTime(-1, "at", at); verr != nil {
			writeError(w, verr)
			return
		}
	}
	n, err := s.CloseHold(token, holder, at)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"closed": n})
}

// jsonStat is a ranking row.
type jsonStat struct {
	HolderID     string  `json:"holder_id"`
	Score        float64 `json:"score"`
	TotalSeconds int64   `json:"total_seconds"`
	Events       int64   `json:"events"`
	OpenHolds    int64   `json:"open_holds"`
	Tokens       int     `json:"tokens"`
	UpdatedAt    int64   `json:"updated_at"`
	// ScoreExact is the exact score in exact mode (decimal: it exceeds 2^53).
	ScoreExact string `json:"score_exact,omitempty"`
}

func writeRows(w http.ResponseWriter, rows []core.HolderStat) {
	out := make([]jsonStat, len(rows))
	for i, r := range rows {
		out[i] = jsonStat{r.HolderID, r.Score, r.TotalSeconds, r.Events, r.OpenHolds, r.Tokens, r.UpdatedAt, exactText(r.Exact)}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) nowParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("now")
	if v == "" {
		return s.Now(), nil
	}
	return ParseTimeText(-1, "now", v)
}

// windowParam is the optional window query parameter.
func windowParam(r *http.Request) (*core.Window, error) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return nil, nil
	}
	win, err := ParseWindow(v)
	if err != nil {
		return nil, err
	}
	return &win, nil
}

func (s *Service) getStats(w http.ResponseWriter, r *http.Request) {
	now, err := s.nowParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	win, err := windowParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rows, err := s.agg.Query(core.Query{Now: now, Window: win})
	if err != nil {
		writeError(w, noHistory(err))
		return
	}
	writeRows(w, rows)
}

func (s *Service) getTop(w http.ResponseWriter, r *http.Request) {
	now, err := s.nowParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	win, err := windowParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	n := 10
	if v := r.URL.Query().Get("n"); v != "" {
		if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 {
			writeError(w, badRequest("n %q: must be a non-negative integer", v))
			return
		}
	}
	if n == 0 { // Query's N 0 means every row; n=0 here means none
		writeRows(w, nil)
		return
	}
	rows, err := s.agg.Query(core.Query{Now: now, Window: win, Token: r.URL.Query().Get("token"), N: n})
	if err != nil {
		writeError(w, noHistory(err))
		return
	}
	writeRows(w, rows)
}
