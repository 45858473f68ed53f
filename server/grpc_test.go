package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

const testNow = 1000

type fixture struct {
	svc   *Service
	agg   *core.Aggregator
	conn  *grpc.ClientConn
	hm    pohpb.HoldMetricsClient
	query pohpb.HoldMetricsQueryClient
}

// newFixture serves a Service over bufconn; durable uses a store in a temp dir.
func newFixture(t *testing.T, durable bool, cfg Config) *fixture {
	t.Helper()
	return newFixtureWith(t, durable, cfg, core.Options{Shards: 4})
}

func newFixtureWith(t *testing.T, durable bool, cfg Config, opts core.Options) *fixture {
	t.Helper()
	agg, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w := core.Memory(agg)
	if durable {
		st, _, err := store.Open(t.TempDir(), agg, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w = st
	}
	if cfg.Clock == nil {
		cfg.Clock = func() int64 { return testNow }
	}
	svc := NewService(agg, w, cfg)
	lis := bufconn.Listen(1 << 20)
	logf := func(string, ...any) {}
	gs := grpc.NewServer(svc.GRPCOptions(logf)...)
	NewGRPC(svc).Register(gs)
	go gs.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		w.Close()
		agg.Close()
	})
	return &fixture{svc, agg, conn, pohpb.NewHoldMetricsClient(conn), pohpb.NewHoldMetricsQueryClient(conn)}
}

func ts(s int64) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: s} }

func msg(token, holder string, start, end int64, w *float64) *pohpb.HoldMsg {
	m := &pohpb.HoldMsg{TokenId: token, HolderId: holder, Start: ts(start), Weight: w}
	if end >= 0 {
		m.End = ts(end)
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRecordAndQueries(t *testing.T) {
	for _, durable := range []bool{false, true} {
		f := newFixture(t, durable, Config{})
		ctx := ctxT(t)
		two := 2.0
		zero := 0.0
		for _, m := range []*pohpb.HoldMsg{
			msg("T", "alice", 0, 10, &two),                               // 20
			msg("T", "bob", 50, -1, nil),                                 // open: 950 at now=1000
			msg("U", "carol", 0, 100, &zero),                             // explicit 0 weight
			{TokenId: "T", HolderId: "dave", Start: ts(990), End: ts(0)}, // epoch end = open
		} {
			if ack, err := f.hm.Record(ctx, m); err != nil || !ack.Ok {
				t.Fatalf("Record(%v): %v %v", m, ack, err)
			}
		}
		_, err := f.hm.Record(ctx, msg("T", "x", 10, 5, nil))
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("bad Record: %v, want InvalidArgument", err)
		}
		snap, err := f.query.Ranking(ctx, &emptypb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		// The seed's GetSnapshot streams the same rows.
		gs, err := f.query.GetSnapshot(ctx, &emptypb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			row, err := gs.Recv()
			if err == io.EOF {
				if i != len(snap.Stats) {
					t.Fatalf("GetSnapshot streamed %d rows, Ranking has %d", i, len(snap.Stats))
				}
				break
			}
			if err != nil || !proto.Equal(row, snap.Stats[i]) {
				t.Fatalf("GetSnapshot row %d %v (%v), Ranking %v", i, row, err, snap.Stats[i])
			}
		}
		got := []string{}
		for _, s := range snap.Stats {
			got = append(got, s.HolderId)
		}
		if want := []string{"bob", "alice", "dave", "carol"}; !equal(got, want) {
			t.Fatalf("ranking %v, want %v", got, want)
		}
		if s := snap.Stats[0]; s.WeightedScore != 950 || s.TotalSeconds != 950 || s.OpenHolds != 1 || s.UpdatedAt.Seconds != testNow {
			t.Fatalf("bob row %+v", s)
		}
		if s := snap.Stats[3]; s.WeightedScore != 0 || s.TotalSeconds != 100 {
			t.Fatalf("carol (weight 0) row %+v", s)
		}
		// Stats streams the same rows in no particular order.
		stream, err := f.hm.Stats(ctx, &emptypb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		ranked := map[string]*pohpb.HoldStat{}
		for _, s := range snap.Stats {
			ranked[s.HolderId] = s
		}
		n := 0
		for {
			row, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := ranked[row.HolderId]; !proto.Equal(row, want) {
				t.Fatalf("Stats row %d %v, Ranking's %v", n, row, want)
			}
			delete(ranked, row.HolderId) // a second row for it fails above
			n++
		}
		if n != 4 {
			t.Fatalf("Stats sent %d rows", n)
		}
		top, err := f.query.TopN(ctx, &pohpb.TopRequest{N: 1, TokenId: "T"})
		if err != nil || len(top.Stats) != 1 || top.Stats[0].HolderId != "bob" {
			t.Fatalf("TopN: %v %v", top, err)
		}
		closed, err := f.hm.CloseHold(ctx, &pohpb.CloseRequest{TokenId: "T", HolderId: "bob", At: ts(60)})
		if err != nil || closed.Closed != 1 {
			t.Fatalf("CloseHold: %v %v", closed, err)
		}
		_, err = f.hm.CloseHold(ctx, &pohpb.CloseRequest{TokenId: "T", HolderId: "bob"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("second CloseHold: %v, want NotFound", err)
		}
		h, err := f.query.HealthCheck(ctx, &emptypb.Empty{})
		if err != nil || !h.Ok || h.Error != "" {
			t.Fatalf("HealthCheck: %v %v", h, err)
		}
		hs, err := f.query.Health(ctx, &emptypb.Empty{})
		if err != nil || !hs.Ok || hs.Status != "SERVING" {
			t.Fatalf("Health: %v %v", hs, err)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBroadcastContinuesAfterBadMessage(t *testing.T) {
	f := newFixture(t, true, Config{})
	ctx := ctxT(t)
	stream, err := f.hm.Broadcast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	neg := -1.0
	msgs := []*pohpb.HoldMsg{
		msg("T", "a", 0, 10, nil),
		msg("T", "b", 0, 10, &neg),    // bad weight
		{TokenId: "T", HolderId: "c"}, // no start
		msg("", "d", 0, 10, nil),      // empty token
		msg("T", "e", 5, 10, nil),
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	var acks []*pohpb.HoldAck
	for {
		a, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, a)
	}
	wantOK := []bool{true, false, false, false, true}
	if len(acks) != len(wantOK) {
		t.Fatalf("%d acks for %d messages", len(acks), len(wantOK))
	}
	for i, a := range acks {
		if a.Ok != wantOK[i] || (!a.Ok && a.Error == "") {
			t.Fatalf("ack %d: %+v", i, a)
		}
	}
	if acks[1].Error != "event 1: weight -1: must be >= 0" { // its position in the stream
		t.Fatalf("reason: %q", acks[1].Error)
	}
	if f.agg.Len() != 2 {
		t.Fatalf("%d holders, want 2", f.agg.Len())
	}
}

func TestBroadcastDrain(t *testing.T) {
	f := newFixture(t, true, Config{})
	ctx := ctxT(t)
	stream, err := f.hm.Broadcast(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(msg("T", "a", 0, 10, nil)); err != nil {
		t.Fatal(err)
	}
	if a, err := stream.Recv(); err != nil || !a.Ok {
		t.Fatalf("first ack %v %v", a, err)
	}
	f.svc.Drain()
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("after drain: %v, want Unavailable", err)
	}
	if _, err := f.hm.Record(ctx, msg("T", "b", 0, 1, nil)); status.Code(err) != codes.Unavailable {
		t.Fatalf("Record while draining: %v", err)
	}
	h, _ := f.query.HealthCheck(ctx, &emptypb.Empty{})
	if h.Ok || h.Error != "draining" {
		t.Fatalf("HealthCheck while draining: %v", h)
	}
	if hs, _ := f.query.Health(ctx, &emptypb.Empty{}); hs.Ok || hs.Status != "NOT_SERVING" || hs.Reason != "draining" {
		t.Fatalf("Health while draining: %v", hs)
	}
}

func TestRecordBatch(t *testing.T) {
	f := newFixture(t, true, Config{MaxBatch: 100})
	ctx := ctxT(t)
	neg := -1.0
	cols := &pohpb.HoldColumns{
		TokenIds: []byte("TT"), TokenOffsets: []int64{0, 1, 2},
		HolderIds: []byte("c1c2"), HolderOffsets: []int64{0, 2, 4},
		Start: []int64{0, 5}, End: []int64{10, 0}, HasEnd: []bool{true, false}, Weight: []float64{1, 3},
	}
	ack, err := f.hm.RecordBatch(ctx, &pohpb.HoldBatch{
		Events: []*pohpb.HoldMsg{msg("T", "a", 0, 10, nil), msg("T", "b", 0, 10, nil)}, Columns: cols})
	if err != nil || !ack.Ok || ack.Accepted != 4 {
		t.Fatalf("batch: %v %v", ack, err)
	}
	// Strict: one bad event rejects the batch, naming it.
	_, err = f.hm.RecordBatch(ctx, &pohpb.HoldBatch{Events: []*pohpb.HoldMsg{msg("T", "z", 0, 1, nil), msg("T", "y", 0, 1, &neg)}})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "event 1: weight -1: must be >= 0" {
		t.Fatalf("strict bad batch: %v", err)
	}
	if f.agg.Len() != 4 {
		t.Fatalf("a rejected batch changed state: %d holders", f.agg.Len())
	}
	// Partial: the good ones go in, every bad one is reported by batch index.
	ack, err = f.hm.RecordBatch(ctx, &pohpb.HoldBatch{Partial: true, Events: []*pohpb.HoldMsg{
		{TokenId: "T", HolderId: "nostart"}, msg("T", "p1", 0, 1, nil), msg("T", "p2", 0, 1, &neg), msg("T", "p3", 0, 1, nil)}})
	if err != nil || ack.Ok || ack.Accepted != 2 || len(ack.Errors) != 2 ||
		ack.Errors[0].Index != 0 || ack.Errors[1].Index != 2 || ack.Errors[1].Reason != "negative" {
		t.Fatalf("partial: %v %v", ack, err)
	}
	_, err = f.hm.RecordBatch(ctx, &pohpb.HoldBatch{Events: make([]*pohpb.HoldMsg, 101)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("oversized batch: %v", err)
	}
	_, err = f.hm.RecordBatch(ctx, &pohpb.HoldBatch{Columns: &pohpb.HoldColumns{Start: []int64{1}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("columns without ids: %v", err)
	}
}

func TestAuth(t *testing.T) {
	for _, reads := range []bool{false, true} {
		f := newFixture(t, false, Config{AuthToken: "s3cret", AuthReads: reads})
		ctx := ctxT(t)
		with := func(tok string) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		}
		m := msg("T", "a", 0, 1, nil)
		if _, err := f.hm.Record(ctx, m); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("no token: %v", err)
		}
		if _, err := f.hm.Record(with("wrong"), m); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("wrong token: %v", err)
		}
		if _, err := f.hm.Record(with("s3cret"), m); err != nil {
			t.Fatalf("right token: %v", err)
		}
		s, err := f.hm.Broadcast(ctx)
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Broadcast without token: %v", err)
		}
		_, err = f.query.Ranking(ctx, &emptypb.Empty{})
		if reads && status.Code(err) != codes.Unauthenticated {
			t.Fatalf("auth_reads: read without token: %v", err)
		}
		if !reads && err != nil {
			t.Fatalf("read blocked by a write-only token: %v", err)
		}
		if _, err := f.query.HealthCheck(ctx, &emptypb.Empty{}); err != nil {
			t.Fatalf("HealthCheck needs no token: %v", err)
		}
	}
}

func TestEventFromMsg(t *testing.T) {
	w := 0.5
	tests := []struct {
		name  string
		m     *pohpb.HoldMsg
		want  core.HoldEvent
		field string
	}{
		{"nanos floored", &pohpb.HoldMsg{TokenId: "T", HolderId: "h", Start: &timestamppb.Timestamp{Seconds: 7, Nanos: 999999999}},
			core.HoldEvent{TokenID: "T", HolderID: "h", Start: 7, Weight: 1}, ""},
		{"end and weight", &pohpb.HoldMsg{TokenId: "T", HolderId: "h", Start: ts(1), End: ts(9), Weight: &w},
			core.HoldEvent{TokenID: "T", HolderID: "h", Start: 1, End: 9, HasEnd: true, Weight: 0.5}, ""},
		{"epoch end is open", &pohpb.HoldMsg{TokenId: "T", HolderId: "h", Start: ts(1), End: ts(0)},
			core.HoldEvent{TokenID: "T", HolderID: "h", Start: 1, Weight: 1}, ""},
		{"no start", &pohpb.HoldMsg{TokenId: "T", HolderId: "h"}, core.HoldEvent{}, "start"},
		{"bad nanos", &pohpb.HoldMsg{TokenId: "T", HolderId: "h", Start: &timestamppb.Timestamp{Nanos: -1}}, core.HoldEvent{}, "start"},
		{"empty holder", &pohpb.HoldMsg{TokenId: "T", Start: ts(1)}, core.HoldEvent{}, "holder_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventFromMsg(0, tt.m)
			if tt.field != "" {
				if err == nil || err.Field != tt.field {
					t.Fatalf("error %v, want field %s", err, tt.field)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzHoldMsg: no wire input makes the conversion or the record path panic.
func FuzzHoldMsg(f *testing.F) {
	for _, m := range []*pohpb.HoldMsg{msg("T", "h", 1, 5, nil), {TokenId: "T"}, {}} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	agg, _ := core.New(core.Options{Shards: 1})
	svc := NewService(agg, core.Memory(agg), Config{Clock: func() int64 { return testNow }})
	g := NewGRPC(svc)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pohpb.HoldMsg
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		_, _ = g.Record(context.Background(), &m)
		var b pohpb.HoldBatch
		if proto.Unmarshal(data, &b) == nil {
			_, _ = g.RecordBatch(context.Background(), &b)
		}
	})
}

// Exact mode over gRPC: weight_exact in, score_exact out; both weights at
// once is an error.
func TestGRPCExactMode(t *testing.T) {
	f := newFixtureWith(t, true, Config{}, core.Options{Exact: true})
	ctx := ctxT(t)
	m := &pohpb.HoldMsg{TokenId: "T", HolderId: "h", Start: ts(0), End: ts(10), WeightExact: "123456789012345678901234567890"}
	if ack, err := f.hm.Record(ctx, m); err != nil || !ack.Ok {
		t.Fatalf("Record: %v %v", ack, err)
	}
	top, err := f.query.TopN(ctx, &pohpb.TopRequest{N: 1, At: ts(100)})
	if err != nil || top.Stats[0].ScoreExact != "1234567890123456789012345678900" {
		t.Fatalf("TopN: %v %v", top, err)
	}
	w := 2.0
	m.Weight = &w
	if _, err := f.hm.Record(ctx, m); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("both weights: %v", err)
	}
}
