package server

import (
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// decodeBoth decodes data with the generated code and with holdFrame.
func decodeBoth(data []byte) (want core.HoldEvent, wantErr *core.ValidationError, protoOK bool,
	got core.HoldEvent, gotErr *core.ValidationError, frameErr error) {
	var m pohpb.HoldMsg
	if proto.Unmarshal(data, &m) == nil {
		protoOK = true
		want, wantErr = eventFromMsg(0, &m)
	}
	var f holdFrame
	// Split the bytes over two buffers, as the transport may.
	half := len(data) / 2
	if frameErr = f.decode(mem.BufferSlice{mem.SliceBuffer(data[:half]), mem.SliceBuffer(data[half:])}); frameErr != nil {
		panic("holdFrame.decode returned an error: it must never end the stream")
	}
	frameErr = f.undecodable
	if frameErr == nil {
		got, gotErr = f.event(0)
	}
	return
}

// sameEvent compares events by value (exact weights too).
func sameEvent(a, b core.HoldEvent) bool {
	wa, wb := a.Wei, b.Wei
	a.Wei, b.Wei = nil, nil
	return a == b && (wa == nil) == (wb == nil) && (wa == nil || *wa == *wb)
}

func TestHoldFrameMatchesGeneratedCode(t *testing.T) {
	w, zero := 2.5, 0.0
	msgs := []*pohpb.HoldMsg{
		msg("T", "h", 1, 5, nil), msg("T", "h", 1, -1, &w), msg("T", "h", 7, 0, &zero),
		{TokenId: "T", HolderId: "h", Start: ts(3), End: ts(1)}, {TokenId: "T"}, {},
		{TokenId: "tok", HolderId: strings.Repeat("x", 300), Start: ts(1)},
	}
	var data [][]byte
	for _, m := range msgs {
		b, _ := proto.Marshal(m)
		data = append(data, b)
	}
	// Repeated fields: last string wins, Timestamps merge; an unknown field
	// and a known field with another wire type are skipped.
	b, _ := proto.Marshal(msg("A", "B", 10, 20, nil))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "A2")
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 5))
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	data = append(data, b)
	for i, d := range data {
		want, wantErr, ok, got, gotErr, ferr := decodeBoth(d)
		if !ok || ferr != nil {
			t.Fatalf("message %d: generated ok %v, frame error %v", i, ok, ferr)
		}
		if !sameEvent(got, want) || (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Fatalf("message %d: frame %+v %v, generated %+v %v", i, got, gotErr, want, wantErr)
		}
	}
	if _, _, _, got, _, _ := decodeBoth(data[len(data)-1]); got.TokenID != "A2" || got.Start != 10 {
		t.Fatalf("merge rules: %+v", got)
	}
	// Truncated input is that message's error (never a panic, never the
	// end of the stream).
	var f holdFrame
	if err := f.decode(mem.BufferSlice{mem.SliceBuffer(data[0][:len(data[0])-1])}); err != nil || f.undecodable == nil {
		t.Fatalf("truncated message: %v, %v", err, f.undecodable)
	}
	if _, verr := f.event(3); verr == nil || verr.Field != "message" || !strings.HasPrefix(verr.Error(), "event 3: message") {
		t.Fatalf("truncated message's error: %v", verr)
	}
}

// FuzzHoldFrame: whatever the generated code decodes, holdFrame decodes to
// the same event (or the same error).
func FuzzHoldFrame(f *testing.F) {
	for _, m := range []*pohpb.HoldMsg{msg("T", "h", 1, 5, nil), {TokenId: "T"}, {}} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr, ok, got, gotErr, ferr := decodeBoth(data)
		if !ok {
			return
		}
		if ferr != nil {
			t.Fatalf("generated code decodes %x, frame fails: %v", data, ferr)
		}
		if !sameEvent(got, want) || (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Fatalf("%x: frame %+v %v, generated %+v %v", data, got, gotErr, want, wantErr)
		}
	})
}

// A string that is not UTF-8 gets ok=false and the stream goes on (the
// generated decoder would have ended the stream).
func TestBroadcastInvalidUTF8Continues(t *testing.T) {
	f := newFixture(t, true, Config{})
	stream, err := f.hm.Broadcast(ctxT(t), grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2("proto")}))
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := proto.Marshal(msg("T", "h", 1, 5, nil))
	bad = protowire.AppendTag(bad, 2, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte{0xff, 0xfe})
	if err := stream.SendMsg(rawMsg(bad)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(msg("T", "good", 1, 5, nil)); err != nil {
		t.Fatal(err)
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
	if len(acks) != 2 || acks[0].Ok || !strings.Contains(acks[0].Error, "holder_id") || !acks[1].Ok {
		t.Fatalf("acks %v", acks)
	}
	if rows, _ := f.agg.Query(core.Query{Now: testNow, Token: "T", Holder: "good"}); len(rows) != 1 {
		t.Fatal("the message after the bad one was not recorded")
	}
}

// rawMsg is a message already encoded; rawCodec sends it as is, so a test
// can put bytes on the wire that the generated code refuses to encode.
type rawMsg []byte

type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return c.CodecV2.Marshal(v)
}
