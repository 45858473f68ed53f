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

// Access is what a gRPC method or an HTTP route asks of its caller when the
// daemon has a bearer token (Config.AuthToken). Without a token nothing is
// guarded.
type Access uint8

const (
	// AccessUnlisted is the access of a name missing from the table: it
	// needs the token, like a write (deny by default).
	AccessUnlisted Access = iota
	// AccessPublic never needs the token: probes, reflection and the
	// /metrics scrape must work without the secret.
	AccessPublic
	// AccessRead needs the token only with Config.AuthReads.
	AccessRead
	// AccessWrite always needs the token.
	AccessWrite
)

func (a Access) String() string {
	switch a {
	case AccessPublic:
		return "public"
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	}
	return "unlisted"
}

// accessTable is the one authorization table of both front ends, keyed by
// gRPC full method name ("/package.Service/Method") and by HTTP ServeMux
// pattern (the patterns of routes, http.go). TestEveryRPCAndRouteHasAccess
// fails when a served method or route has no entry; one that slips through
// needs the token anyway.
var accessTable = map[string]Access{
	// poh.HoldMetrics and poh.HoldMetricsQuery (proto/hold.proto)
	"/poh.HoldMetrics/Broadcast":        AccessWrite,
	"/poh.HoldMetrics/Record":           AccessWrite,
	"/poh.HoldMetrics/RecordBatch":      AccessWrite,
	"/poh.HoldMetrics/CloseHold":        AccessWrite,
	"/poh.HoldMetrics/Stats":            AccessRead,
	"/poh.HoldMetricsQuery/GetSnapshot": AccessRead,
	"/poh.HoldMetricsQuery/TopN":        AccessRead,
	"/poh.HoldMetricsQuery/Ranking":     AccessRead,
	"/poh.HoldMetricsQuery/Health":      AccessPublic,
	"/poh.HoldMetricsQuery/HealthCheck": AccessPublic,
	// grpc.health.v1 and server reflection, as holdmetricsd registers them
	"/grpc.health.v1.Health/Check":                                   AccessPublic,
	"/grpc.health.v1.Health/List":                                    AccessPublic,
	"/grpc.health.v1.Health/Watch":                                   AccessPublic,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      AccessPublic,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": AccessPublic,

	// HTTP
	"POST /v1/holds":       AccessWrite,
	"POST /hold":           AccessWrite,
	"POST /v1/holds/close": AccessWrite,
	"GET /v1/stats":        AccessRead,
	"GET /stats":           AccessRead,
	"GET /v1/top":          AccessRead,
	"GET /healthz":         AccessPublic,
	"GET /readyz":          AccessPublic,
	"GET /metrics":         AccessPublic,
	// HTTPOptions.Pprof: profiles show internals, so at least a read
	"/debug/pprof/":        AccessRead,
	"/debug/pprof/profile": AccessRead,
}

// AccessOf is the table entry of a gRPC full method name or an HTTP mux
// pattern; ok is false (and the access AccessUnlisted) when there is none.
func AccessOf(name string) (a Access, ok bool) {
	a, ok = accessTable[name]
	return a, ok
}

// needsToken reports whether calling name needs the bearer token.
func (s *Service) needsToken(name string) bool {
	if s.cfg.AuthToken == "" {
		return false
	}
	switch accessTable[name] {
	case AccessPublic:
		return false
	case AccessRead:
		return s.cfg.AuthReads
	}
	return true // AccessWrite, and every name the table lacks
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

func (s *Service) checkGRPC(ctx context.Context, method string) error {
	if !s.needsToken(method) {
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

// AuthUnary and AuthStream enforce the bearer token on gRPC, by the table.
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

// guardHTTP wraps the handler of the route with this mux pattern: the
// token is checked by the pattern's table entry.
func (s *Service) guardHTTP(pattern string, h http.Handler) http.Handler {
	if !s.needsToken(pattern) {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="holdmetricsd"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
