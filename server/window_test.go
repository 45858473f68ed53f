package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// windowEvents: alice holds 2 T over [0, 10); bob holds 1 T from 50 (open).
// At now 1000: window [0,100) gives alice 20, bob 50; [5,60) gives 10, 10.
const windowEvents = `[{"token_id":"T","holder_id":"alice","start":0,"end":10,"weight":2},
	{"token_id":"T","holder_id":"bob","start":50}]`

func TestParseWindow(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want core.Window
		err  string
	}{
		{"0,100", core.Window{Start: 0, End: 100}, ""},
		{" 5 , 60.9 ", core.Window{Start: 5, End: 60}, ""},
		{"1970-01-01T00:00:05Z,1970-01-01T00:01:00Z", core.Window{Start: 5, End: 60}, ""},
		{"7,7", core.Window{Start: 7, End: 7}, ""},
		{"100,5", core.Window{}, "end 5 is before start 100"},
		{"100", core.Window{}, "must be t0,t1"},
		{"x,5", core.Window{}, `start "x" is not Unix seconds`},
		{"-1,5", core.Window{}, "start -1 and end 5 must lie in"},
	} {
		got, err := ParseWindow(tt.in)
		if tt.err == "" && (err != nil || got != tt.want) {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "window")) {
			t.Errorf("ParseWindow(%q) error %v; want one containing %q", tt.in, err, tt.err)
		}
	}
}

func TestHTTPWindowQueries(t *testing.T) {
	srv, svc, _ := newHTTPWith(t, Config{}, core.Options{History: true})
	if code, body := do(t, "POST", srv.URL+"/v1/holds", windowEvents, ""); code != 200 {
		t.Fatalf("record: %d %s", code, body)
	}
	rowsOf := func(path string) []jsonStat {
		t.Helper()
		code, body := do(t, "GET", srv.URL+path, "", "")
		var rows []jsonStat
		if code != 200 || json.Unmarshal([]byte(body), &rows) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return rows
	}
	scores := func(rows []jsonStat) map[string]float64 {
		m := map[string]float64{}
		for _, r := range rows {
			m[r.HolderID] = r.Score
		}
		return m
	}
	if got := scores(rowsOf("/v1/top?window=0,100&now=1000")); !reflect.DeepEqual(got, map[string]float64{"alice": 20, "bob": 50}) {
		t.Fatalf("top [0,100): %v", got)
	}
	if got := scores(rowsOf("/v1/stats?window=1970-01-01T00:00:05Z,60&now=1000")); !reflect.DeepEqual(got, map[string]float64{"alice": 10, "bob": 10}) {
		t.Fatalf("stats [5,60): %v", got)
	}
	// Rows are exactly the core's window query, in order.
	want, _ := svc.Aggregator().Query(core.Query{N: 1, Now: 1000, Token: "T", Window: &core.Window{Start: 5, End: 60}})
	got := rowsOf("/v1/top?n=1&token=T&window=5,60&now=1000")
	if len(got) != 1 || got[0].HolderID != want[0].HolderID || got[0].Score != want[0].Score ||
		got[0].TotalSeconds != want[0].TotalSeconds {
		t.Fatalf("top 1 T [5,60): %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ path, contains string }{
		{"/v1/top?window=100,5", "end 5 is before start 100"},
		{"/v1/stats?window=100,5", `"field":"window"`},
		{"/v1/top?window=soon", "must be t0,t1"},
	} {
		if code, body := do(t, "GET", srv.URL+tt.path, "", ""); code != 400 || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s: %d %s; want 400 containing %s", tt.path, code, body, tt.contains)
		}
	}

	plain, _, _ := newHTTP(t, Config{})
	for _, path := range []string{"/v1/top?window=0,100", "/v1/stats?window=0,100", "/stats?window=0,100"} {
		if code, body := do(t, "GET", plain.URL+path, "", ""); code != 400 || !strings.Contains(body, "--history") {
			t.Errorf("without history GET %s: %d %s; want 400 naming --history", path, code, body)
		}
	}
	if code, _ := do(t, "GET", plain.URL+"/v1/top", "", ""); code != 200 {
		t.Errorf("unwindowed top without history: %d", code)
	}
}

func TestGRPCTopNWindow(t *testing.T) {
	f := newFixtureWith(t, true, Config{}, core.Options{Shards: 4, History: true})
	ctx := ctxT(t)
	two := 2.0
	for _, m := range []*pohpb.HoldMsg{msg("T", "alice", 0, 10, &two), msg("T", "bob", 50, -1, nil)} {
		if _, err := f.hm.Record(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	top, err := f.query.TopN(ctx, &pohpb.TopRequest{N: 5, At: ts(1000), Window: &pohpb.Window{Start: ts(5), End: ts(60)}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.agg.Query(core.Query{N: 5, Now: 1000, Token: "", Window: &core.Window{Start: 5, End: 60}})
	if len(top.Stats) != 2 || len(want) != 2 {
		t.Fatalf("top: %v", top.Stats)
	}
	for i, s := range top.Stats {
		if s.HolderId != want[i].HolderID || s.WeightedScore != want[i].Score || s.WeightedScore != 10 {
			t.Fatalf("row %d: %v, want %+v", i, s, want[i])
		}
	}
	for name, w := range map[string]*pohpb.Window{
		"end before start": {Start: ts(100), End: ts(5)},
		"no end":           {Start: ts(100)},
		"out of range":     {Start: ts(-5), End: ts(5)},
	} {
		_, err := f.query.TopN(ctx, &pohpb.TopRequest{Window: w})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "window") {
			t.Errorf("%s: %v; want InvalidArgument naming the window", name, err)
		}
	}

	plain := newFixture(t, false, Config{})
	_, err = plain.query.TopN(ctx, &pohpb.TopRequest{Window: &pohpb.Window{Start: ts(0), End: ts(100)}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--history") {
		t.Fatalf("without history: %v; want FailedPrecondition naming --history", err)
	}
}
