package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// GRPC implements poh.HoldMetrics and poh.HoldMetricsQuery over a Service.
type GRPC struct {
	pohpb.UnimplementedHoldMetricsServer
	pohpb.UnimplementedHoldMetricsQueryServer
	svc *Service
}

// NewGRPC returns the handlers; Register adds them to a grpc.Server, which
// must be created with ServerOptions() (Broadcast's decoder).
func NewGRPC(svc *Service) *GRPC { return &GRPC{svc: svc} }

// Register adds both services to s.
func (g *GRPC) Register(s *grpc.Server) {
	pohpb.RegisterHoldMetricsServer(s, g)
	pohpb.RegisterHoldMetricsQueryServer(s, g)
}

// statusOf maps a write error to a gRPC status.
func statusOf(err error) error {
	var ve *core.ValidationError
	var be *core.BatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve), errors.As(err, &be), errors.Is(err, core.ErrInvalidEvent):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, core.ErrNoOpenHold):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, core.ErrNoHistory):
		return status.Error(codes.FailedPrecondition, noHistory(err).Error())
	case errors.Is(err, ErrDraining), errors.Is(err, store.ErrClosed), errors.Is(err, core.ErrClosed),
		errors.Is(err, store.ErrFailed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// Record records one event; a bad one is InvalidArgument.
func (g *GRPC) Record(ctx context.Context, m *pohpb.HoldMsg) (*pohpb.HoldAck, error) {
	e, verr := eventFromMsg(0, m)
	if verr != nil {
		g.svc.agg.CountRejected(1, 0)
		return nil, status.Error(codes.InvalidArgument, verr.Error())
	}
	if _, err := g.svc.Record([]core.HoldEvent{e}, false); err != nil {
		return nil, statusOf(err)
	}
	return &pohpb.HoldAck{Ok: true}, nil
}

// ackGroup is the acks of one group of stream messages, in order: ok for
// each, once ticket is durable, except the bad ones (sorted by index).
type ackGroup struct {
	ticket core.Ticket
	n      int
	bad    []badAck
}

type badAck struct {
	i      int
	reason string
}

var okAck = &pohpb.HoldAck{Ok: true}

// framePool recycles Broadcast frames across streams.
var framePool = sync.Pool{New: func() any { return new(holdFrame) }}

// Broadcast acknowledges every message in order: ok once it is durable, or
// ok=false with the reason (the stream goes on). Reading and acknowledging
// are pipelined: a reader goroutine decodes messages (by hand, see
// holdFrame), this loop records every message already read as one group
// (one lock, one log record), and a sender goroutine waits for the log once
// per batch of groups. On shutdown it stops reading, acknowledges what it
// read, and ends the stream with Unavailable.
func (g *GRPC) Broadcast(stream pohpb.HoldMetrics_BroadcastServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	acks := make(chan ackGroup, 256)
	sendErr := make(chan error, 1)
	go func() { sendErr <- g.sendAcks(ctx, stream, acks) }()

	msgs := make(chan *holdFrame, 256)
	recvErr := make(chan error, 1)
	go func() {
		for pos := 0; ; pos++ {
			f := framePool.Get().(*holdFrame)
			if err := stream.RecvMsg(f); err != nil {
				recvErr <- err
				return
			}
			f.pos = pos
			select {
			case msgs <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	finish := func(err error) error {
		close(acks)
		if serr := <-sendErr; serr != nil && err == nil {
			err = serr
		}
		return err
	}
	var sc groupScratch
	for {
		select {
		case <-g.svc.drainCh:
			return finish(status.Error(codes.Unavailable, ErrDraining.Error()))
		case err := <-recvErr:
			// Messages read before the error are already queued in msgs.
			for len(msgs) > 0 {
				sc.frames = append(sc.frames[:0], <-msgs)
				g.broadcastGroup(&sc, acks)
			}
			if errors.Is(err, io.EOF) {
				return finish(nil) // the client closed its side: done
			}
			return finish(err)
		case f := <-msgs:
			// Take every message already read: one lock and one log record
			// for the group, acks still one per message and in order.
			sc.frames = append(sc.frames[:0], f)
			for len(sc.frames) < 1024 && len(msgs) > 0 {
				sc.frames = append(sc.frames, <-msgs)
			}
			g.broadcastGroup(&sc, acks)
		case err := <-sendErr:
			close(acks) // ends the sender's drain goroutine
			cancel()
			return err
		}
	}
}

// groupScratch is reused by one stream's groups.
type groupScratch struct {
	frames []*holdFrame
	events []core.HoldEvent
	pos    []int // events[j] is frames[pos[j]]
}

// broadcastGroup records a group of stream messages in partial mode, queues
// its acks and recycles its frames (nothing refers to them afterwards: the
// aggregator and the log copy what they keep, errors are formatted).
// Errors name each message's position in the stream ("event 17: ...").
func (g *GRPC) broadcastGroup(sc *groupScratch, acks chan<- ackGroup) {
	var bad []badAck
	sc.events, sc.pos = sc.events[:0], sc.pos[:0]
	for i, f := range sc.frames {
		e, verr := f.event(f.pos)
		if verr != nil {
			bad = append(bad, badAck{i, verr.Error()})
			continue
		}
		sc.pos = append(sc.pos, i)
		sc.events = append(sc.events, e)
	}
	g.svc.agg.CountRejected(len(bad), 0)
	var t core.Ticket
	if len(sc.events) > 0 {
		var err error
		_, t, err = g.svc.record(sc.events, true)
		var be *core.BatchError
		switch {
		case errors.As(err, &be):
			for _, v := range be.Errors {
				v2 := *v
				v2.Index = sc.frames[sc.pos[v.Index]].pos
				bad = append(bad, badAck{sc.pos[v.Index], v2.Error()})
			}
		case err != nil:
			for _, i := range sc.pos {
				bad = append(bad, badAck{i, err.Error()})
			}
		}
		if len(bad) > 0 {
			slices.SortFunc(bad, func(a, b badAck) int { return a.i - b.i })
		}
	}
	acks <- ackGroup{ticket: t, n: len(sc.frames), bad: bad}
	clear(sc.events) // drop the strings that alias the frames
	for i, f := range sc.frames {
		framePool.Put(f)
		sc.frames[i] = nil
	}
}

// sendAcks sends queued acks in order, waiting for the log once per batch
// of groups.
func (g *GRPC) sendAcks(ctx context.Context, stream pohpb.HoldMetrics_BroadcastServer, acks <-chan ackGroup) error {
	// The ok ack is the same bytes every time: encode it once per stream.
	var okMsg grpc.PreparedMsg
	if err := okMsg.Encode(stream, okAck); err != nil {
		return err
	}
	groups := make([]ackGroup, 0, 64)
	for {
		p, ok := <-acks
		if !ok {
			return nil
		}
		groups = append(groups[:0], p)
	more:
		for len(groups) < cap(groups) {
			select {
			case p, ok := <-acks:
				if !ok {
					break more
				}
				groups = append(groups, p)
			default:
				break more
			}
		}
		var last core.Ticket
		for _, p := range groups {
			last = max(last, p.ticket)
		}
		werr := g.svc.wait(last)
		for _, p := range groups {
			if err := sendGroup(stream, &okMsg, p, werr); err != nil {
				// Drain the queue so the recording loop never blocks on it.
				go func() {
					for range acks {
					}
				}()
				return err
			}
		}
	}
}

func sendGroup(stream pohpb.HoldMetrics_BroadcastServer, okMsg *grpc.PreparedMsg, p ackGroup, werr error) error {
	bad := p.bad
	for i := 0; i < p.n; i++ {
		var err error
		switch {
		case len(bad) > 0 && bad[0].i == i:
			err = stream.Send(&pohpb.HoldAck{Error: bad[0].reason})
			bad = bad[1:]
		case werr != nil && p.ticket != 0:
			err = stream.Send(&pohpb.HoldAck{Error: "not stored: " + werr.Error()})
		default:
			err = stream.SendMsg(okMsg)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RecordBatch records events and then the columnar rows, all-or-nothing
// (InvalidArgument naming the first bad event) unless partial.
func (g *GRPC) RecordBatch(ctx context.Context, b *pohpb.HoldBatch) (*pohpb.BatchAck, error) {
	n := len(b.Events)
	if b.Columns != nil {
		n += len(b.Columns.Start)
	}
	if n > g.svc.cfg.MaxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "batch of %d events is larger than the limit %d", n, g.svc.cfg.MaxBatch)
	}
	events := make([]core.HoldEvent, 0, n)
	var pre []*core.ValidationError // conversion failures, by batch index
	index := []int(nil)             // events[i] is batch event index[i] (partial mode with failures)
	for i, m := range b.Events {
		e, verr := eventFromMsg(i, m)
		if verr != nil {
			if !b.Partial {
				g.svc.agg.CountRejected(1, n-1) // the batch is refused at its first unconvertible event
				return nil, status.Error(codes.InvalidArgument, verr.Error())
			}
			if index == nil {
				index = make([]int, len(events), n)
				for j := range index {
					index[j] = j
				}
			}
			pre = append(pre, verr)
			continue
		}
		if index != nil {
			index = append(index, i)
		}
		events = append(events, e)
	}
	if b.Columns != nil && len(b.Columns.Start) > 0 {
		before := len(events)
		var err error
		if events, err = columnsEvents(b.Columns, events); err != nil {
			return nil, status.Error(codes.InvalidArgument, "columns: "+err.Error())
		}
		if index != nil {
			for j := before; j < len(events); j++ {
				index = append(index, len(b.Events)+j-before)
			}
		}
	}
	// core reports positions in `events`; index maps them back to batch
	// positions (columns rows are numbered after the events).
	g.svc.agg.CountRejected(len(pre), 0)
	accepted, err := g.svc.Record(events, b.Partial)
	var be *core.BatchError
	if err != nil && !(b.Partial && errors.As(err, &be)) {
		return nil, statusOf(err)
	}
	ack := &pohpb.BatchAck{Ok: err == nil && len(pre) == 0, Accepted: uint64(accepted)}
	bad := pre
	if be != nil {
		for _, v := range be.Errors {
			v2 := *v
			if index != nil {
				v2.Index = index[v.Index]
			}
			bad = append(bad, &v2)
		}
	}
	slices.SortFunc(bad, func(a, b *core.ValidationError) int { return a.Index - b.Index })
	ack.Rejected = uint64(len(bad))
	// At most MaxRowErrors rows in the reply (Rejected counts them all).
	for _, v := range bad[:min(len(bad), g.svc.cfg.MaxRowErrors)] {
		ack.Errors = append(ack.Errors, eventError(int64(v.Index), v))
	}
	if len(bad) > 0 {
		ack.Error = fmt.Sprintf("%d of %d events rejected; first: %s", len(bad), n, ack.Errors[0].Error)
	}
	return ack, nil
}

func eventError(i int64, v *core.ValidationError) *pohpb.EventError {
	return &pohpb.EventError{Index: i, Field: v.Field, Reason: string(v.Reason), Error: v.Error()}
}

// CloseHold closes the open holds of a pair (NotFound when there is none).
func (g *GRPC) CloseHold(ctx context.Context, r *pohpb.CloseRequest) (*pohpb.CloseAck, error) {
	at := int64(-1)
	if r.At != nil {
		if err := CheckTimestamp(-1, "at", r.At); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if at = r.At.Seconds; at < 0 {
			return nil, status.Error(codes.InvalidArgument, core.ValidateTime(-1, "at", at).Error())
		}
	}
	n, err := g.svc.CloseHold(r.TokenId, r.HolderId, at)
	if err != nil {
		return nil, statusOf(err)
	}
	return &pohpb.CloseAck{Closed: uint64(n)}, nil
}

// Stats streams every holder's row, one per message, in no particular order
// (the seed's RPC, whose order was never a contract: no ranking sort).
// GetSnapshot streams the same rows in ranking order.
func (g *GRPC) Stats(_ *emptypb.Empty, stream pohpb.HoldMetrics_StatsServer) error {
	return g.streamRows(stream.Send, true)
}

func (g *GRPC) streamRows(send func(*pohpb.HoldStat) error, unordered bool) error {
	rows, err := g.svc.agg.Query(core.Query{Now: g.svc.Now(), Unordered: unordered})
	if err != nil {
		return statusOf(err)
	}
	for i := range rows {
		if err := send(statToMsg(&rows[i])); err != nil {
			return err
		}
	}
	return nil
}

func snapshotMsg(rows []core.HolderStat, now int64) *pohpb.Snapshot {
	out := &pohpb.Snapshot{Stats: make([]*pohpb.HoldStat, len(rows)), At: &timestamppb.Timestamp{Seconds: now}}
	for i := range rows {
		out.Stats[i] = statToMsg(&rows[i])
	}
	return out
}

// GetSnapshot streams the ranking, one row per message (the seed's RPC).
func (g *GRPC) GetSnapshot(_ *emptypb.Empty, stream pohpb.HoldMetricsQuery_GetSnapshotServer) error {
	return g.streamRows(stream.Send, false)
}

// Ranking returns the whole ranking in one message (bounded by the
// client's receive limit: page with TopN, or stream GetSnapshot, beyond).
func (g *GRPC) Ranking(ctx context.Context, _ *emptypb.Empty) (*pohpb.Snapshot, error) {
	now := g.svc.Now()
	rows, err := g.svc.agg.Query(core.Query{Now: now})
	if err != nil {
		return nil, statusOf(err)
	}
	return snapshotMsg(rows, now), nil
}

// TopN returns the first n rows (10 by default), optionally for one token
// and clipped to a window (FailedPrecondition without history).
func (g *GRPC) TopN(ctx context.Context, r *pohpb.TopRequest) (*pohpb.Snapshot, error) {
	now := g.svc.Now()
	if r.At != nil {
		now = r.At.Seconds
	}
	n := int(min(r.N, 1<<20))
	if n == 0 {
		n = 10
	}
	if r.Offset > 1<<30 {
		return nil, status.Errorf(codes.InvalidArgument, "offset %d is more than %d", r.Offset, 1<<30)
	}
	off := int(r.Offset)
	q := core.Query{Now: now, Token: r.TokenId, N: off + n}
	if r.Window != nil {
		w, err := WindowFromProto(r.Window)
		if err != nil {
			return nil, statusOf(err)
		}
		q.Window = &w
	}
	rows, err := g.svc.agg.Query(q)
	if err != nil {
		return nil, statusOf(err)
	}
	rows = rows[min(off, len(rows)):]
	return snapshotMsg(rows, now), nil
}

// HealthCheck answers ok while the daemon takes writes (the seed's RPC:
// a HoldAck whose error says why not).
func (g *GRPC) HealthCheck(ctx context.Context, _ *emptypb.Empty) (*pohpb.HoldAck, error) {
	if ok, why := g.svc.Health(); !ok {
		return &pohpb.HoldAck{Ok: false, Error: why}, nil
	}
	return &pohpb.HoldAck{Ok: true}, nil
}

// Health reports SERVING until shutdown begins (or the store cannot write).
func (g *GRPC) Health(ctx context.Context, _ *emptypb.Empty) (*pohpb.HealthStatus, error) {
	if ok, why := g.svc.Health(); !ok {
		return &pohpb.HealthStatus{Ok: false, Status: "NOT_SERVING", Reason: why}, nil
	}
	return &pohpb.HealthStatus{Ok: true, Status: "SERVING"}, nil
}

// RecoveryUnary and RecoveryStream turn a handler panic into Internal, so
// that no input can take the daemon down.
func RecoveryUnary(log func(string, ...any)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

// RecoveryStream is RecoveryUnary for streams.
func RecoveryStream(log func(string, ...any)) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}
