package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
	"github.com/poh-holdmetrics/poh-holdmetrics/server/store"
)

// GRPC implements poh.HoldMetrics and poh.HoldMetricsQuery over a Service.
type GRPC struct {
	pohpb.UnimplementedHoldMetricsServer
	pohpb.UnimplementedHoldMetricsQueryServer
	svc *Service
}

// NewGRPC returns the handlers; Register adds them to a grpc.Server.
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
	case errors.Is(err, ErrDraining), errors.Is(err, store.ErrClosed), errors.Is(err, core.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// Record records one event; a bad one is InvalidArgument.
func (g *GRPC) Record(ctx context.Context, m *pohpb.HoldMsg) (*pohpb.HoldAck, error) {
	e, verr := eventFromMsg(0, m)
	if verr != nil {
		return nil, status.Error(codes.InvalidArgument, verr.Error())
	}
	if _, err := g.svc.Record([]core.HoldEvent{e}, false); err != nil {
		return nil, statusOf(err)
	}
	return &pohpb.HoldAck{Ok: true}, nil
}

type pendingAck struct {
	ticket store.Ticket
	ack    *pohpb.HoldAck
}

var okAck = &pohpb.HoldAck{Ok: true}

// Broadcast acknowledges every message in order: ok once it is durable, or
// ok=false with the reason (the stream goes on). Reading and acknowledging
// are pipelined: a sender goroutine waits for the log once per group of
// acks, so one stream is not limited to one message per log write. On
// shutdown it stops reading, acknowledges what it read, and ends the stream
// with Unavailable.
func (g *GRPC) Broadcast(stream pohpb.HoldMetrics_BroadcastServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	acks := make(chan pendingAck, 4096)
	sendErr := make(chan error, 1)
	go func() { sendErr <- g.sendAcks(ctx, stream, acks) }()

	msgs := make(chan *pohpb.HoldMsg, 256)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
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
	var group []*pohpb.HoldMsg
	var scratch []core.HoldEvent
	for {
		select {
		case <-g.svc.drainCh:
			return finish(status.Error(codes.Unavailable, ErrDraining.Error()))
		case err := <-recvErr:
			// Messages read before the error are already queued in msgs.
			for len(msgs) > 0 {
				group = append(group[:0], <-msgs)
				scratch = g.broadcastGroup(group, scratch, acks)
			}
			if errors.Is(err, io.EOF) {
				return finish(nil) // the client closed its side: done
			}
			return finish(err)
		case m := <-msgs:
			// Take every message already read: one lock and one log record
			// for the group, acks still one per message and in order.
			group = append(group[:0], m)
			for len(group) < 1024 && len(msgs) > 0 {
				group = append(group, <-msgs)
			}
			scratch = g.broadcastGroup(group, scratch, acks)
		case err := <-sendErr:
			close(acks) // ends the sender's drain goroutine
			cancel()
			return err
		}
	}
}

// broadcastGroup records a group of stream messages in partial mode and
// queues one ack per message, in order. Errors are numbered as if each
// message were alone ("event 0: ...").
func (g *GRPC) broadcastGroup(group []*pohpb.HoldMsg, events []core.HoldEvent, acks chan<- pendingAck) []core.HoldEvent {
	bad := make(map[int]string)
	events = events[:0]
	pos := make([]int, 0, len(group)) // events[j] is group[pos[j]]
	for i, m := range group {
		e, verr := eventFromMsg(0, m)
		if verr != nil {
			bad[i] = verr.Error()
			continue
		}
		pos = append(pos, i)
		events = append(events, e)
	}
	var t store.Ticket
	if len(events) > 0 {
		var err error
		_, t, err = g.svc.record(events, true)
		var be *core.BatchError
		switch {
		case errors.As(err, &be):
			for _, v := range be.Errors {
				v2 := *v
				v2.Index = 0
				bad[pos[v.Index]] = v2.Error()
			}
		case err != nil:
			for _, i := range pos {
				bad[i] = err.Error()
			}
		}
	}
	for i := range group {
		if reason, isBad := bad[i]; isBad {
			acks <- pendingAck{ack: &pohpb.HoldAck{Error: reason}}
		} else {
			acks <- pendingAck{ticket: t, ack: okAck}
		}
	}
	return events
}

// sendAcks sends queued acks in order, waiting for the log once per group.
func (g *GRPC) sendAcks(ctx context.Context, stream pohpb.HoldMetrics_BroadcastServer, acks <-chan pendingAck) error {
	// The ok ack is the same bytes every time: encode it once per stream.
	var okMsg grpc.PreparedMsg
	if err := okMsg.Encode(stream, okAck); err != nil {
		return err
	}
	group := make([]pendingAck, 0, 256)
	for {
		p, ok := <-acks
		if !ok {
			return nil
		}
		group = append(group[:0], p)
	more:
		for len(group) < cap(group) {
			select {
			case p, ok := <-acks:
				if !ok {
					break more
				}
				group = append(group, p)
			default:
				break more
			}
		}
		var last store.Ticket
		for _, p := range group {
			last = max(last, p.ticket)
		}
		werr := g.svc.wait(last)
		for _, p := range group {
			var err error
			switch {
			case werr != nil && p.ticket != 0:
				err = stream.Send(&pohpb.HoldAck{Error: "not stored: " + werr.Error()})
			case p.ack == okAck:
				err = stream.SendMsg(&okMsg)
			default:
				err = stream.Send(p.ack)
			}
			if err != nil {
				// Drain the queue so the reader never blocks on it.
				go func() {
					for range acks {
					}
				}()
				return err
			}
		}
	}
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
	accepted, err := g.svc.Record(events, b.Partial)
	var be *core.BatchError
	if err != nil && !(b.Partial && errors.As(err, &be)) {
		return nil, statusOf(err)
	}
	ack := &pohpb.BatchAck{Ok: err == nil && len(pre) == 0, Accepted: uint64(accepted)}
	for _, v := range pre {
		ack.Errors = append(ack.Errors, eventError(int64(v.Index), v))
	}
	if be != nil {
		for _, v := range be.Errors {
			i := v.Index
			if index != nil {
				i = index[i]
			}
			v2 := *v
			v2.Index = i
			ack.Errors = append(ack.Errors, eventError(int64(i), &v2))
		}
	}
	if len(ack.Errors) > 0 {
		ack.Error = fmt.Sprintf("%d of %d events rejected; first: %s", len(ack.Errors), n, ack.Errors[0].Error)
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
		if err := checkTimestamp(-1, "at", r.At); err != nil {
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

// Stats streams the ranking, one row per message.
func (g *GRPC) Stats(_ *emptypb.Empty, stream pohpb.HoldMetrics_StatsServer) error {
	rows, err := g.svc.agg.Snapshot(g.svc.Now())
	if err != nil {
		return statusOf(err)
	}
	for i := range rows {
		if err := stream.Send(statToMsg(&rows[i])); err != nil {
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

// GetSnapshot returns the whole ranking in one message.
func (g *GRPC) GetSnapshot(ctx context.Context, _ *emptypb.Empty) (*pohpb.Snapshot, error) {
	now := g.svc.Now()
	rows, err := g.svc.agg.Snapshot(now)
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
	n := int(r.N)
	if n == 0 {
		n = 10
	}
	var rows []core.HolderStat
	var err error
	if r.Window != nil {
		var w core.Window
		if w, err = windowMsg(r.Window); err != nil {
			return nil, statusOf(err)
		}
		rows, err = g.svc.agg.TopNWindow(n, now, r.TokenId, w)
	} else {
		rows, err = g.svc.agg.TopN(n, now, r.TokenId)
	}
	if err != nil {
		return nil, statusOf(err)
	}
	return snapshotMsg(rows, now), nil
}

// HealthCheck reports SERVING until shutdown begins.
func (g *GRPC) HealthCheck(ctx context.Context, _ *emptypb.Empty) (*pohpb.HealthStatus, error) {
	if g.svc.Ready() {
		return &pohpb.HealthStatus{Ok: true, Status: "SERVING"}, nil
	}
	return &pohpb.HealthStatus{Ok: false, Status: "NOT_SERVING"}, nil
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
