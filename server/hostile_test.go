package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// Inputs a hostile world sends, each answered with the right status and a
// reason, nothing silently rewritten (each failed on 0.1).

func TestHTTPUnknownKeyIsNamed(t *testing.T) {
	srv, svc, _ := newHTTP(t, Config{})
	code, b := do(t, "POST", srv.URL+"/v1/holds", `{"token_id":"T","holder_id":"h","start":0,"end_time":10,"wieght":5}`, "")
	if code != 400 || !strings.Contains(b, `event 0: unknown key \"end_time\"`) {
		t.Fatalf("misspelt keys: %d %s", code, b)
	}
	if svc.Aggregator().Len() != 0 {
		t.Fatal("an event with a misspelt key was recorded")
	}
	code, b = do(t, "POST", srv.URL+"/v1/holds/close", `{"token_id":"T","holder":"h"}`, "")
	if code != 400 || !strings.Contains(b, `unknown key \"holder\"`) {
		t.Fatalf("close with a misspelt key: %d %s", code, b)
	}
}

func TestHTTPInvalidUTF8IDIsRejected(t *testing.T) {
	srv, svc, _ := newHTTP(t, Config{})
	for _, body := range []string{"{\"token_id\":\"T\",\"holder_id\":\"a\xffb\",\"start\":0}",
		`{"token_id":"T","holder_id":"a\ud800b","start":0}`} {
		code, b := do(t, "POST", srv.URL+"/v1/holds", body, "")
		if code != 400 || !strings.Contains(b, `"reason":"invalid_utf8"`) || !strings.Contains(b, `"field":"holder_id"`) {
			t.Fatalf("%q: %d %s", body, code, b)
		}
	}
	// A U+FFFD the caller wrote is an ordinary character.
	if code, b := do(t, "POST", srv.URL+"/v1/holds", `{"token_id":"T","holder_id":"a\ufffdb","start":0}`, ""); code != 200 {
		t.Fatalf("a literal U+FFFD: %d %s", code, b)
	}
	if svc.Aggregator().Len() != 1 {
		t.Fatalf("%d holders", svc.Aggregator().Len())
	}
}

type failingBody struct{ n int }

func (f *failingBody) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n--
		return copy(p, `[{"token_id":`), nil
	}
	return 0, io.ErrUnexpectedEOF
}

func TestHTTPStatusCodes(t *testing.T) {
	srv, _, _ := newHTTP(t, Config{})
	req, _ := http.NewRequest("POST", srv.URL+"/v1/holds", &failingBody{n: 1})
	req.ContentLength = 1000 // more than arrives: the body ends early
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 0 {
			t.Fatalf("truncated body: %d %s", resp.StatusCode, b)
		}
	}
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/nope", 404, `"error":"no route GET /nope"`},
		{"DELETE", "/v1/holds", 405, `"error":"method DELETE is not allowed on /v1/holds`},
		{"GET", "/v1/top?n=1;x=%zz", 400, `malformed query string`},
	} {
		code, b := do(t, tc.method, srv.URL+tc.path, "", "")
		if code != tc.code || !strings.Contains(b, tc.want) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, code, b, tc.code, tc.want)
		}
	}
}

// A body of bad events buys a reply of bounded size: the first
// MaxRowErrors rows and the exact count.
func TestRowErrorsAreCapped(t *testing.T) {
	srv, _, _ := newHTTP(t, Config{MaxRowErrors: 3})
	body := "[" + strings.Repeat("{},", 99) + "{}]"
	code, b := do(t, "POST", srv.URL+"/v1/holds?partial=1", body, "")
	if code != 200 || !strings.Contains(b, `"rejected":100`) || strings.Count(b, `"reason"`) != 3 {
		t.Fatalf("%d %.300s", code, b)
	}
	f := newFixtureWith(t, false, Config{MaxRowErrors: 2}, core.Options{})
	batch := &pohpb.HoldBatch{Partial: true}
	for i := 0; i < 10; i++ {
		batch.Events = append(batch.Events, &pohpb.HoldMsg{TokenId: "T"})
	}
	ack, err := f.hm.RecordBatch(ctxT(t), batch)
	if err != nil || ack.Rejected != 10 || len(ack.Errors) != 2 {
		t.Fatalf("gRPC: %v %v", ack, err)
	}
}

// Past MaxInFlight a request is refused at once (503), probes still answer.
func TestInFlightIsCapped(t *testing.T) {
	_, svc, _ := newHTTP(t, Config{MaxInFlight: 1})
	release, entered := make(chan struct{}), make(chan struct{})
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		writeJSON(w, 200, "ok")
	})
	h := svc.serveRoutes([]route{{"GET /v1/top", block}, {"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, "ok")
	})}})
	srv := httptestServer(t, h)
	done := make(chan int)
	go func() { c, _ := do(t, "GET", srv+"/v1/top", "", ""); done <- c }()
	<-entered
	if code, b := do(t, "GET", srv+"/v1/top", "", ""); code != 503 || !strings.Contains(b, "in flight") {
		t.Fatalf("second request while one is in flight: %d %s", code, b)
	}
	if code, _ := do(t, "GET", srv+"/healthz", "", ""); code != 200 {
		t.Fatalf("health while busy: %d", code)
	}
	close(release)
	if c := <-done; c != 200 {
		t.Fatalf("first request: %d", c)
	}
}

// A request whose bytes do not decode is the caller's fault: InvalidArgument
// naming it, not Internal.
func TestGRPCUndecodableRequestIsInvalidArgument(t *testing.T) {
	f := newFixture(t, false, Config{})
	bad := protowire.AppendTag(nil, 2, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0xff, 0xfe}) // holder_id not UTF-8
	var out pohpb.HoldAck
	err := f.conn.Invoke(ctxT(t), "/poh.HoldMetrics/Record", rawMsg(bad), &out,
		grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2("proto")}))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not a valid") {
		t.Fatalf("undecodable Record: %v", err)
	}
	// A stream after an undecodable frame acknowledges every event.
	stream, err := f.hm.Broadcast(ctxT(t), grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2("proto")}))
	if err != nil {
		t.Fatal(err)
	}
	truncated := []byte{0x0a, 0x10, 'T'}
	for i := 0; i < 30; i++ {
		m := rawMsg(mustMarshal(msg("T", fmt.Sprintf("h%d", i), 1, 5, nil)))
		if i == 10 {
			m = rawMsg(truncated)
		}
		if err := stream.SendMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	var acks []*pohpb.HoldAck
	for {
		var a pohpb.HoldAck
		if err := stream.RecvMsg(&a); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		acks = append(acks, &a)
	}
	if len(acks) != 30 || acks[10].Ok || !strings.HasPrefix(acks[10].Error, "event 10: message") || !acks[29].Ok {
		t.Fatalf("%d acks; 10: %v", len(acks), acks[min(10, len(acks)-1)])
	}
	if f.agg.Len() != 29 {
		t.Fatalf("%d holders recorded, want 29", f.agg.Len())
	}
}

func mustMarshal(m *pohpb.HoldMsg) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// httptestServer serves h on loopback for the test; its base URL.
func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
