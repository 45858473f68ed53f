package server

import (
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// The Broadcast stream is the hot path: one small HoldMsg per event. Decoding
// each one with the generated code allocates the message, two Timestamps, a
// weight and two strings, and walks reflection tables; at 100k+ messages/s
// that was a quarter of the daemon's CPU. holdFrame decodes the same wire
// form by hand into a reused buffer: the bytes are copied once, the ids are
// strings aliasing that copy (the aggregator and the log copy what they
// keep), and frames are recycled once their group is recorded.
//
// The decoding follows protobuf's rules for HoldMsg: unknown fields and known
// fields with another wire type are skipped, the last occurrence of a scalar
// wins, repeated Timestamps merge. One difference is deliberate: a string
// that is not UTF-8 is not a decode error (which would end the stream) but
// reaches core validation, so the message gets ok=false and the stream goes
// on, as for every other bad value.

// ServerOptions are the grpc.ServerOptions that the handlers of NewGRPC need:
// a codec that decodes Broadcast messages into holdFrames and delegates every
// other message to the standard proto codec.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(frameCodec{encoding.GetCodecV2("proto")})}
}

// GRPCOptions are ServerOptions plus the service's guards, in their order:
// the token checked before a message is read (tap), then per call panic
// recovery, the token, the in-flight cap and decode errors. log receives
// recovered panics.
func (s *Service) GRPCOptions(log func(string, ...any)) []grpc.ServerOption {
	return append(ServerOptions(),
		grpc.InTapHandle(s.AuthTap()),
		grpc.ChainUnaryInterceptor(RecoveryUnary(log), s.AuthUnary(), s.LimitUnary()),
		grpc.ChainStreamInterceptor(RecoveryStream(log), s.AuthStream(), s.LimitStream()))
}

type frameCodec struct{ base encoding.CodecV2 }

func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }
func (c frameCodec) Name() string                           { return c.base.Name() }

func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*holdFrame); ok {
		return f.decode(data)
	}
	return c.unmarshalLenient(data, v)
}

// wireTime is a google.protobuf.Timestamp as decoded.
type wireTime struct {
	seconds int64
	nanos   int32
	set     bool
}

// wireEvent is a HoldMsg's content, from either decoder.
type wireEvent struct {
	token, holder string
	start, end    wireTime
	weight        float64
	hasWeight     bool
	weightExact   string // decimal (field 9), "" when unset
	// undecodable is why the message's bytes are not a HoldMsg (the hand
	// decoder only): the message is rejected alone, the stream goes on.
	undecodable error
}

// event converts and checks what cannot be represented as a core.HoldEvent:
// start is required, whole seconds are used (nanos are always >= 0 in a
// valid Timestamp, so dropping them floors), an unset or epoch-0 end is an
// open hold, an unset weight is 1.0. Values are validated by the aggregator.
func (w *wireEvent) event(i int) (core.HoldEvent, *core.ValidationError) {
	e := core.HoldEvent{TokenID: w.token, HolderID: w.holder, Weight: 1}
	if w.undecodable != nil {
		return e, &core.ValidationError{Index: i, Field: "message", Value: "(bytes)", Reason: core.ReasonOutOfRange,
			Detail: "is not a HoldMsg: " + w.undecodable.Error()}
	}
	if err := core.ValidateID(i, "token_id", e.TokenID); err != nil {
		return e, err
	}
	if err := core.ValidateID(i, "holder_id", e.HolderID); err != nil {
		return e, err
	}
	if !w.start.set {
		return e, &core.ValidationError{Index: i, Field: "start", Value: "unset", Reason: core.ReasonEmpty,
			Detail: "is required"}
	}
	if err := checkNanos(i, "start", w.start.nanos); err != nil {
		return e, err
	}
	e.Start = w.start.seconds
	if w.end.set && (w.end.seconds != 0 || w.end.nanos != 0) {
		if err := checkNanos(i, "end", w.end.nanos); err != nil {
			return e, err
		}
		e.End, e.HasEnd = w.end.seconds, true
	}
	if w.hasWeight {
		e.Weight = w.weight
	}
	if w.weightExact != "" {
		if w.hasWeight {
			return e, &core.ValidationError{Index: i, Field: "weight", Value: "(both)", Reason: core.ReasonOutOfRange,
				Detail: "weight and weight_exact are both set: send one"}
		}
		wei, err := core.ParseWei(i, w.weightExact)
		if err != nil {
			return e, err
		}
		e.Wei = wei
	}
	return e, nil
}

// holdFrame is one Broadcast message decoded by hand. Its strings alias raw:
// use them only until the frame is reused.
type holdFrame struct {
	wireEvent
	raw []byte
	pos int // the message's position in its stream, for errors
}

// decode never fails: bytes that are not a HoldMsg make the frame
// undecodable, and the message gets its own ok=false ack (a decode error
// would end the stream and lose the acks of messages already recorded).
func (f *holdFrame) decode(data mem.BufferSlice) error {
	n := data.Len()
	if cap(f.raw) < n {
		f.raw = make([]byte, n, max(n, 256))
	}
	f.raw = f.raw[:n]
	data.CopyTo(f.raw)
	f.wireEvent = wireEvent{}
	if err := f.parse(f.raw); err != nil {
		f.wireEvent = wireEvent{undecodable: err}
	}
	return nil
}

func (f *holdFrame) parse(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("HoldMsg: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("HoldMsg field %d: %w", num, protowire.ParseError(n))
			}
			s := ""
			if len(v) > 0 {
				s = unsafe.String(&v[0], len(v))
			}
			if num == 1 {
				f.token = s
			} else {
				f.holder = s
			}
			b = b[n:]
		case (num == 3 || num == 4) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("HoldMsg field %d: %w", num, protowire.ParseError(n))
			}
			t := &f.start
			if num == 4 {
				t = &f.end
			}
			if err := t.merge(v); err != nil {
				return fmt.Errorf("HoldMsg field %d: %w", num, err)
			}
			b = b[n:]
		case num == 9 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("HoldMsg field 9: %w", protowire.ParseError(n))
			}
			if !utf8.Valid(v) {
				return fmt.Errorf("HoldMsg field 9 (weight_exact) is not UTF-8")
			}
			f.weightExact = unsafe.String(unsafe.SliceData(v), len(v))
			b = b[n:]
		case num == 5 && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return fmt.Errorf("HoldMsg field 5: %w", protowire.ParseError(n))
			}
			f.weight, f.hasWeight = math.Float64frombits(v), true
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("HoldMsg field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

// merge decodes a Timestamp into t (fields present overwrite, as protobuf
// merges a repeated message field).
func (t *wireTime) merge(b []byte) error {
	t.set = true
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if num == 1 {
				t.seconds = int64(v)
			} else {
				t.nanos = int32(v)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}
