package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// writeMethods are the gRPC methods the bearer token always guards.
var writeMethods = map[string]bool{
	"/poh.HoldMetrics/Broadcast":   true,
	"/poh.HoldMetrics/Record":      true,
	"/poh.HoldMetrics/RecordBatch": true,
	"/poh.HoldMetrics/CloseHold":   true,
}

// readMethods are guarded only with AuthReads. Health and reflection never
// are: probes and tools must work without the secret.
var readMethods = map[string]bool{
	"/poh.HoldMetrics/Stats":            true,
	"/poh.HoldMetricsQuery/GetSnapshot": true,
	"/poh.HoldMetricsQuery/TopN":        true,
}

// tokenOK compares in constant time. Both sides are hashed first, so the
// comparison does not leak the token's length either.
func (s *Service) tokenOK(header string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.AuthToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (s *Service) guarded(method string) bool {
	if s.cfg.AuthToken == "" {
		return false
	}
	return writeMethods[method] || (s.cfg.AuthReads && readMethods[method])
}

func (s *Service) checkGRPC(ctx context.Context, method string) error {
	if !s.guarded(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if s.tokenOK(v) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
}

// AuthUnary and AuthStream enforce the bearer token on gRPC.
func (s *Service) AuthUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := s.checkGRPC(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// AuthStream is AuthUnary for streams.
func (s *Service) AuthStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := s.checkGRPC(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
}

// requireToken wraps an HTTP handler that the token guards (write, or a
// read with AuthReads).
func (s *Service) requireToken(write bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AuthToken != "" && (write || s.cfg.AuthReads) && !s.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="holdmetricsd"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		h(w, r)
	}
}
