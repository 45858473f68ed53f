// Command holdmetrics-load drives a running holdmetricsd over gRPC on
// loopback and prints one JSON line of results (events/s, latency
// percentiles). It is the daemon benchmarks' client: a separate process, so
// client and server costs are not mixed in one runtime.
//
//	holdmetrics-load -addr 127.0.0.1:60051 -mode broadcast -streams 4 -duration 5s
//	holdmetrics-load -mode batch -batch 10000 -conc 2 -duration 5s
//	holdmetrics-load -mode unary -conc 50 -duration 5s
//	holdmetrics-load -mode fill -events 10000000      (load N events, for restart timing)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

type result struct {
	Mode         string  `json:"mode"`
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	Calls        int64   `json:"calls"`
	P50ms        float64 `json:"p50_ms,omitempty"`
	P90ms        float64 `json:"p90_ms,omitempty"`
	P99ms        float64 `json:"p99_ms,omitempty"`
	P999ms       float64 `json:"p999_ms,omitempty"`
	MaxMs        float64 `json:"max_ms,omitempty"`
	Rejected     int64   `json:"rejected"`
}

var (
	addr     = flag.String("addr", "127.0.0.1:60051", "daemon gRPC address (loopback)")
	mode     = flag.String("mode", "batch", "broadcast, batch, unary or fill")
	duration = flag.Duration("duration", 5*time.Second, "how long to run (broadcast, batch, unary)")
	streams  = flag.Int("streams", 4, "Broadcast streams")
	conc     = flag.Int("conc", 2, "concurrent callers (batch, unary)")
	batch    = flag.Int("batch", 10000, "events per RecordBatch call")
	columns  = flag.Bool("columns", true, "send batches in the columnar form")
	events   = flag.Int64("events", 1_000_000, "events to load (fill)")
	holders  = flag.Int("holders", 100_000, "distinct holders")
	tokens   = flag.Int("tokens", 10, "distinct tokens")
	window   = flag.Int("window", 4096, "unacknowledged Broadcast messages per stream")
	rate     = flag.Float64("rate", 0, "unary: calls/s per client (0: as fast as possible). Latency is then "+
		"measured from each call's scheduled time, so a stall is not hidden (no coordinated omission)")
)

func main() {
	flag.Parse()
	r, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdmetrics-load:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func run() (*result, error) {
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := pohpb.NewHoldMetricsClient(conn)
	switch *mode {
	case "broadcast":
		return runBroadcast(c)
	case "batch":
		return runBatch(c, *duration, -1)
	case "fill":
		return runBatch(c, 24*time.Hour, *events)
	case "unary":
		return runUnary(c)
	}
	return nil, fmt.Errorf("unknown mode %q", *mode)
}

// event i: a closed hold of a few hours, deterministic.
func ids(i int64) (token, holder string) {
	return fmt.Sprintf("TOKEN-%d", i%int64(*tokens)), fmt.Sprintf("0x%040x", uint64(i*2654435761)%uint64(*holders))
}

func holdMsg(i int64) *pohpb.HoldMsg {
	tok, h := ids(i)
	start := 1_700_000_000 + i%86400
	w := float64(1 + i%7)
	return &pohpb.HoldMsg{TokenId: tok, HolderId: h, Start: &timestamppb.Timestamp{Seconds: start},
		End: &timestamppb.Timestamp{Seconds: start + 3600 + i%7200}, Weight: &w}
}

func makeBatch(base int64, n int) *pohpb.HoldBatch {
	if !*columns {
		b := &pohpb.HoldBatch{Events: make([]*pohpb.HoldMsg, n)}
		for i := range b.Events {
			b.Events[i] = holdMsg(base + int64(i))
		}
		return b
	}
	c := &pohpb.HoldColumns{TokenOffsets: []int64{0}, HolderOffsets: []int64{0}}
	for i := int64(0); i < int64(n); i++ {
		m := holdMsg(base + i)
		c.TokenIds = append(c.TokenIds, m.TokenId...)
		c.TokenOffsets = append(c.TokenOffsets, int64(len(c.TokenIds)))
		c.HolderIds = append(c.HolderIds, m.HolderId...)
		c.HolderOffsets = append(c.HolderOffsets, int64(len(c.HolderIds)))
		c.Start = append(c.Start, m.Start.Seconds)
		c.End = append(c.End, m.End.Seconds)
		c.Weight = append(c.Weight, *m.Weight)
	}
	return &pohpb.HoldBatch{Columns: c}
}

func percentiles(r *result, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / 1e6
	}
	r.P50ms, r.P90ms, r.P99ms, r.P999ms = at(0.50), at(0.90), at(0.99), at(0.999)
	r.MaxMs = float64(lat[len(lat)-1]) / 1e6
}

// runBatch sends prebuilt batches from conc callers for d, or until limit
// events (fill; limit < 0 means no limit).
func runBatch(c pohpb.HoldMetricsClient, d time.Duration, limit int64) (*result, error) {
	const distinct = 8
	batches := make([]*pohpb.HoldBatch, distinct)
	for i := range batches {
		batches[i] = makeBatch(int64(i)*int64(*batch), *batch)
	}
	var sent, rejected, calls atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(d)
	t0 := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, *conc)
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for k := w; time.Now().Before(deadline); k += *conc {
				if limit >= 0 && sent.Add(int64(*batch)) > limit+int64(*batch)-1 {
					break
				}
				s := time.Now()
				ack, err := c.RecordBatch(context.Background(), batches[k%distinct])
				if err != nil {
					errc <- err
					return
				}
				mine = append(mine, time.Since(s))
				calls.Add(1)
				rejected.Add(int64(len(ack.Errors)))
				if limit < 0 {
					sent.Add(int64(ack.Accepted))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	el := time.Since(t0).Seconds()
	n := sent.Load()
	if limit >= 0 {
		n = calls.Load() * int64(*batch)
	}
	r := &result{Mode: *mode, Events: n, Seconds: el, EventsPerSec: float64(n) / el, Calls: calls.Load(), Rejected: rejected.Load()}
	percentiles(r, lat)
	return r, nil
}

func runUnary(c pohpb.HoldMetricsClient) (*result, error) {
	msgs := make([]*pohpb.HoldMsg, 4096)
	for i := range msgs {
		msgs[i] = holdMsg(int64(i))
	}
	deadline := time.Now().Add(*duration)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errc := make(chan error, *conc)
	t0 := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []time.Duration
			var interval time.Duration
			if *rate > 0 {
				interval = time.Duration(float64(time.Second) / *rate)
			}
			next := time.Now().Add(time.Duration(r.Int64N(int64(interval) + 1)))
			for time.Now().Before(deadline) {
				s := time.Now()
				if interval > 0 {
					time.Sleep(time.Until(next))
					s = next
					next = next.Add(interval)
				}
				if _, err := c.Record(context.Background(), msgs[r.IntN(len(msgs))]); err != nil {
					errc <- err
					return
				}
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	el := time.Since(t0).Seconds()
	r := &result{Mode: *mode, Events: int64(len(lat)), Calls: int64(len(lat)), Seconds: el, EventsPerSec: float64(len(lat)) / el}
	percentiles(r, lat)
	return r, nil
}

// runBroadcast keeps up to window unacknowledged messages in flight on each
// stream and counts acknowledged events.
func runBroadcast(c pohpb.HoldMetricsClient) (*result, error) {
	msgs := make([]*pohpb.HoldMsg, 8192)
	for i := range msgs {
		msgs[i] = holdMsg(int64(i))
	}
	var acked, rejected atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 2*(*streams))
	deadline := time.Now().Add(*duration)
	t0 := time.Now()
	for s := 0; s < *streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := c.Broadcast(context.Background())
			if err != nil {
				errc <- err
				return
			}
			// Encode once: the benchmark measures the daemon, not the
			// client's marshalling.
			prepared := make([]*grpc.PreparedMsg, len(msgs))
			for i, m := range msgs {
				prepared[i] = &grpc.PreparedMsg{}
				if err := prepared[i].Encode(stream, m); err != nil {
					errc <- err
					return
				}
			}
			credit := make(chan struct{}, *window)
			for i := 0; i < *window; i++ {
				credit <- struct{}{}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					a, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						return
					}
					if err != nil {
						errc <- err
						return
					}
					if a.Ok {
						acked.Add(1)
					} else {
						rejected.Add(1)
					}
					credit <- struct{}{}
				}
			}()
			for i := s; time.Now().Before(deadline); i++ {
				<-credit
				if err := stream.SendMsg(prepared[i%len(prepared)]); err != nil {
					errc <- err
					break
				}
			}
			_ = stream.CloseSend()
			<-done
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	el := time.Since(t0).Seconds()
	return &result{Mode: "broadcast", Events: acked.Load(), Seconds: el, EventsPerSec: float64(acked.Load()) / el,
		Rejected: rejected.Load()}, nil
}
