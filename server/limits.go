package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// Bounded resources and honest status codes under a hostile world: a cap on
// requests in flight, on the per-row errors a reply carries, calls refused
// before their message is read when they lack the token, and request bytes
// that do not decode reported as the caller's fault (InvalidArgument, 400).

// Defaults of the limits (Config fields, daemon flags).
const (
	DefaultMaxInFlight  = 256
	DefaultMaxRowErrors = 1000
)

// inflight bounds the requests being served at once (both front ends).
type inflight struct{ slots chan struct{} }

func newInflight(n int) *inflight {
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	return &inflight{slots: make(chan struct{}, n)}
}

// enter takes a slot, or reports that none is free (the caller answers
// "too many requests in flight" instead of queueing without bound).
func (f *inflight) enter() bool {
	select {
	case f.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (f *inflight) leave() { <-f.slots }

var errBusy = errors.New("too many requests in flight; retry later")

// LimitUnary and LimitStream cap the gRPC calls in flight (ResourceExhausted
// beyond the cap). Health is never refused.
func (s *Service) LimitUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := decodeError(req); err != nil {
			return nil, err
		}
		if accessTable[info.FullMethod] == AccessPublic {
			return h(ctx, req)
		}
		if !s.busy.enter() {
			return nil, status.Error(codes.ResourceExhausted, errBusy.Error())
		}
		defer s.busy.leave()
		return h(ctx, req)
	}
}

// LimitStream is LimitUnary for streams.
func (s *Service) LimitStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ss = &decodeCheckedStream{ServerStream: ss}
		if accessTable[info.FullMethod] == AccessPublic {
			return h(srv, ss)
		}
		if !s.busy.enter() {
			return status.Error(codes.ResourceExhausted, errBusy.Error())
		}
		defer s.busy.leave()
		return h(srv, ss)
	}
}

// AuthTap refuses a call that needs the token and lacks it before its
// message is read (grpc's tap handle runs on the transport, ahead of the
// receive), so an unauthenticated caller cannot make the daemon decode a
// large message.
func (s *Service) AuthTap() tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if !s.needsToken(info.FullMethodName) {
			return ctx, nil
		}
		for _, v := range info.Header.Get("authorization") {
			if s.tokenOK(v) {
				return ctx, nil
			}
		}
		return ctx, status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	}
}

// Request bytes that do not decode: grpc-go reports a codec error as
// Internal, which blames the daemon. The codec records the error instead
// and the interceptors answer InvalidArgument naming it.
var undecodable sync.Map // request message (pointer) → error

// decodeError returns (and forgets) the decode error of a request message.
func decodeError(req any) error {
	if err, ok := undecodable.LoadAndDelete(req); ok {
		return status.Errorf(codes.InvalidArgument, "the request is not a valid %T: %v", req, err)
	}
	return nil
}

// decodeCheckedStream turns a streamed message's decode error into
// InvalidArgument the same way.
type decodeCheckedStream struct{ grpc.ServerStream }

func (d *decodeCheckedStream) RecvMsg(m any) error {
	if err := d.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return decodeError(m)
}

// unmarshalLenient is the codec's path for every message but Broadcast's
// frames: a decode error is recorded for the interceptors.
func (c frameCodec) unmarshalLenient(data mem.BufferSlice, v any) error {
	if err := c.base.Unmarshal(data, v); err != nil {
		undecodable.Store(v, err)
	}
	return nil
}

// limitHTTP caps the HTTP requests in flight (503 beyond the cap, probes
// and the metrics scrape excepted), rejects a query string that does not
// parse (400), and answers 404 and 405 in JSON like every other error.
func (s *Service) limitHTTP(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern == "" { // the mux's own 404 / 405: keep its code and headers, answer JSON
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Content-Type" && k != "X-Content-Type-Options" {
					w.Header()[k] = v
				}
			}
			msg := fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)
			if rec.Code == http.StatusMethodNotAllowed {
				msg = fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.Header().Get("Allow"))
			}
			writeJSON(w, rec.Code, map[string]string{"error": msg})
			return
		}
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed query string: " + err.Error()})
			return
		}
		if accessTable[pattern] != AccessPublic {
			if !s.busy.enter() {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": errBusy.Error()})
				return
			}
			defer s.busy.leave()
		}
		mux.ServeHTTP(w, r)
	})
}
