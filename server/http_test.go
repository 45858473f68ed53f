package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

func newHTTP(t *testing.T, cfg Config) (*httptest.Server, *Service, *prometheus.Registry) {
	t.Helper()
	return newHTTPWith(t, cfg, core.Options{})
}

func newHTTPWith(t *testing.T, cfg Config, opts core.Options) (*httptest.Server, *Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Registerer = reg
	agg, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Clock == nil {
		cfg.Clock = func() int64 { return testNow }
	}
	svc := NewService(agg, core.Memory(agg), cfg)
	srv := httptest.NewServer(svc.Handler(reg, HTTPOptions{}))
	t.Cleanup(func() { srv.Close(); agg.Close() })
	return srv, svc, reg
}

func do(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPAPI(t *testing.T) {
	srv, _, _ := newHTTP(t, Config{MaxBatch: 3, MaxBodyBytes: 4096})
	u := srv.URL
	tests := []struct {
		name, method, path, body string
		code                     int
		contains                 string
	}{
		{"one event", "POST", "/v1/holds", `{"token_id":"T","holder_id":"alice","start":0,"end":10,"weight":2}`, 200, `"accepted":1`},
		{"array, rfc3339, float floored", "POST", "/v1/holds",
			`[{"token_id":"T","holder_id":"bob","start":"1970-01-01T00:00:50.9Z"},{"token_id":"T","holder_id":"carol","start":1.9,"end":2.2,"weight":null}]`, 200, `"accepted":2`},
		{"seed alias 202", "POST", "/hold", `{"token_id":"U","holder_id":"dave","start":1,"end":3}`, 202, `"accepted":1`},
		{"bad event names field and index", "POST", "/v1/holds", `[{"token_id":"T","holder_id":"x","start":1},{"token_id":"T","holder_id":"x","start":5,"end":1}]`,
			400, `"index":1,"field":"end","reason":"end_before_start"`},
		{"bad json", "POST", "/v1/holds", `{"token_id":`, 400, "invalid JSON"},
		{"not an event", "POST", "/v1/holds", `42`, 400, "body must be"},
		{"bad time string", "POST", "/v1/holds", `{"token_id":"T","holder_id":"x","start":"yesterday"}`, 400, `"field":"start"`},
		{"huge time", "POST", "/v1/holds", `{"token_id":"T","holder_id":"x","start":1e300}`, 400, `out_of_range`},
		{"string weight", "POST", "/v1/holds", `{"token_id":"T","holder_id":"x","start":1,"weight":"2"}`, 400, `"field":"weight"`},
		{"too many events", "POST", "/v1/holds", `[{},{},{},{}]`, 400, "limit 3"},
		{"body too large", "POST", "/v1/holds", `[` + strings.Repeat(" ", 5000) + `]`, 413, ""},
		{"partial", "POST", "/v1/holds?partial=1", `[{"token_id":"T","holder_id":"p","start":1},{"holder_id":"q","start":1}]`, 200, `"accepted":1,"rejected":1,"errors":[{"error":"event 1: token_id`},
		{"close", "POST", "/v1/holds/close", `{"token_id":"T","holder_id":"bob","at":100}`, 200, `"closed":1`},
		{"close again", "POST", "/v1/holds/close", `{"token_id":"T","holder_id":"bob"}`, 404, "no open hold"},
		{"stats", "GET", "/v1/stats?now=1000", "", 200, `[{"holder_id":"p","score":999,"total_seconds":999,"events":1,"open_holds":1,"tokens":1,"updated_at":1000},{"holder_id":"bob","score":50,`},
		{"seed stats alias", "GET", "/stats", "", 200, `"holder_id":"p"`},
		{"top per token", "GET", "/v1/top?n=1&token=U", "", 200, `[{"holder_id":"dave","score":2,`},
		{"top bad n", "GET", "/v1/top?n=-1", "", 400, "non-negative"},
		{"healthz", "GET", "/healthz", "", 200, "ok"},
		{"readyz", "GET", "/readyz", "", 200, "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, tt.method, u+tt.path, tt.body, "")
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("%s %s: %d %s; want %d containing %s", tt.method, tt.path, code, body, tt.code, tt.contains)
			}
		})
	}
	var rows []map[string]any
	_, body := do(t, "GET", u+"/v1/stats?now=1000", "", "")
	if err := json.Unmarshal([]byte(body), &rows); err != nil || len(rows) != 5 {
		t.Fatalf("stats rows: %v %s", err, body)
	}
}

func TestHTTPAuthAndDrain(t *testing.T) {
	srv, svc, _ := newHTTP(t, Config{AuthToken: "tok"})
	ev := `{"token_id":"T","holder_id":"a","start":1}`
	if code, _ := do(t, "POST", srv.URL+"/v1/holds", ev, ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/v1/holds", ev, "nope"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/v1/holds", ev, "tok"); code != 200 {
		t.Fatalf("right token: %d", code)
	}
	if code, _ := do(t, "GET", srv.URL+"/v1/stats", "", ""); code != 200 {
		t.Fatalf("reads must not need a write token: %d", code)
	}
	svc.Drain()
	if code, _ := do(t, "GET", srv.URL+"/readyz", "", ""); code != 503 {
		t.Fatalf("readyz while draining: %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/v1/holds", ev, "tok"); code != 503 {
		t.Fatalf("write while draining: %d", code)
	}

	srv2, _, _ := newHTTP(t, Config{AuthToken: "tok", AuthReads: true})
	if code, _ := do(t, "GET", srv2.URL+"/v1/stats", "", ""); code != 401 {
		t.Fatalf("auth_reads: %d", code)
	}
	if code, _ := do(t, "GET", srv2.URL+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz needs no token: %d", code)
	}
}

func TestMetricsLint(t *testing.T) {
	srv, _, reg := newHTTP(t, Config{})
	do(t, "POST", srv.URL+"/v1/holds", `{"token_id":"T","holder_id":"a","start":1,"end":5}`, "")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	code, body := do(t, "GET", srv.URL+"/metrics", "", "")
	for _, want := range []string{`poh_hold_events_total{result="accepted"} 1`, "go_goroutines", "process_cpu_seconds_total"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}

// FuzzHTTPHolds: no body makes the JSON path panic or answer 5xx.
func FuzzHTTPHolds(f *testing.F) {
	f.Add(`{"token_id":"T","holder_id":"h","start":1,"end":2,"weight":1.5}`)
	f.Add(`[{"start":"2024-01-01T00:00:00Z"},{}]`)
	f.Add(`{"start":1e999}`)
	agg, _ := core.New(core.Options{Shards: 1})
	svc := NewService(agg, core.Memory(agg), Config{Clock: func() int64 { return testNow }})
	h := svc.Handler(prometheus.NewRegistry(), HTTPOptions{})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/holds?partial=1", "/v1/holds/close"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// Exact mode over HTTP: decimal-string weights, exact scores as decimal
// strings; a float-mode daemon refuses an exact weight, naming it.
func TestHTTPExactMode(t *testing.T) {
	srv, _, _ := newHTTPWith(t, Config{}, core.Options{Exact: true})
	body := `[{"token_id":"T","holder_id":"0xAbCdEf0123456789aBcDeF0123456789ABCDEF01","start":0,"end":10,"weight":"1000000000000000000000001"},
	          {"token_id":"T","holder_id":"0xabcdef0123456789abcdef0123456789abcdef01","start":0,"end":1,"weight":3}]`
	if code, b := do(t, "POST", srv.URL+"/v1/holds", body, ""); code != 200 {
		t.Fatalf("exact post: %d %s", code, b)
	}
	code, b := do(t, "GET", srv.URL+"/v1/stats?now=100", "", "")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(b), &rows); err != nil || code != 200 || len(rows) != 1 {
		t.Fatalf("stats: %d %s", code, b)
	}
	if rows[0]["score_exact"] != "10000000000000000000000013" || rows[0]["holder_id"] != "0xabcdef0123456789abcdef0123456789abcdef01" {
		t.Fatalf("exact row %v", rows[0])
	}
	for _, bad := range []struct{ w, reason string }{{`"1.5"`, "not_integer"}, {`"-2"`, "negative"}, {`2.5`, "not_integer"}} {
		code, b := do(t, "POST", srv.URL+"/v1/holds", `{"token_id":"T","holder_id":"x","start":0,"weight":`+bad.w+`}`, "")
		if code != 400 || !strings.Contains(b, `"reason":"`+bad.reason+`"`) {
			t.Fatalf("weight %s: %d %s", bad.w, code, b)
		}
	}
	f, _, _ := newHTTP(t, Config{})
	code, b = do(t, "POST", f.URL+"/v1/holds", `{"token_id":"T","holder_id":"x","start":0,"weight":"5"}`, "")
	if code != 400 || !strings.Contains(b, `"reason":"exact_weight"`) {
		t.Fatalf("float daemon, exact weight: %d %s", code, b)
	}
}
