package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// rpc is one gRPC method as the interceptors see it.
type rpc struct {
	name   string // "/package.Service/Method"
	stream bool
}

// servedRPCs is every method of every service holdmetricsd registers: the
// two of proto/hold.proto, grpc.health.v1 and server reflection (v1 and
// v1alpha). cmd/holdmetricsd's test checks that the daemon registers
// nothing else.
func servedRPCs() []rpc {
	var out []rpc
	for _, fd := range []protoreflect.FileDescriptor{pohpb.File_hold_proto, healthpb.File_grpc_health_v1_health_proto,
		reflectionv1.File_grpc_reflection_v1_reflection_proto, reflectionv1alpha.File_grpc_reflection_v1alpha_reflection_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				out = append(out, rpc{"/" + string(sd.FullName()) + "/" + string(md.Name()),
					md.IsStreamingClient() || md.IsStreamingServer()})
			}
		}
	}
	return out
}

// withoutAccess is the names that have no entry in the auth table.
func withoutAccess(names []string) []string {
	var out []string
	for _, n := range names {
		if _, ok := AccessOf(n); !ok {
			out = append(out, n)
		}
	}
	return out
}

func rpcNames(rpcs []rpc) []string {
	out := make([]string, len(rpcs))
	for i, r := range rpcs {
		out[i] = r.name
	}
	return out
}

func routePatterns(routes []route) []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.pattern
	}
	return out
}

func newAuthService(t *testing.T, cfg Config) *Service {
	t.Helper()
	agg, err := core.New(core.Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agg.Close() })
	cfg.Clock = func() int64 { return testNow }
	return NewService(agg, core.Memory(agg), cfg)
}

func TestEveryRPCAndRouteHasAccess(t *testing.T) {
	rpcs := servedRPCs()
	if len(rpcs) < 12 || !slices.Contains(rpcNames(rpcs), "/poh.HoldMetrics/Broadcast") {
		t.Fatalf("descriptors list only %v", rpcNames(rpcs))
	}
	if missing := withoutAccess(rpcNames(rpcs)); len(missing) > 0 {
		t.Errorf("gRPC methods without an auth table entry (server/auth.go): %v", missing)
	}
	svc := newAuthService(t, Config{})
	routes := svc.routes(prometheus.NewRegistry(), HTTPOptions{Pprof: true})
	if missing := withoutAccess(routePatterns(routes)); len(missing) > 0 {
		t.Errorf("HTTP routes without an auth table entry (server/auth.go): %v", missing)
	}
	// Public is the short list of what must work without the secret; a
	// new entry there is a decision to make here too.
	var public []string
	for name, a := range accessTable {
		if a == AccessPublic {
			public = append(public, name)
		}
	}
	slices.Sort(public)
	want := []string{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/List", "/grpc.health.v1.Health/Watch",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		"/poh.HoldMetricsQuery/Health", "/poh.HoldMetricsQuery/HealthCheck", "GET /healthz", "GET /metrics", "GET /readyz"}
	if !slices.Equal(public, want) {
		t.Errorf("public entries %v, want %v", public, want)
	}
	// Every table entry is served: no stale names.
	served := append(rpcNames(rpcs), routePatterns(routes)...)
	for name := range accessTable {
		if !slices.Contains(served, name) {
			t.Errorf("auth table entry %q is neither an RPC nor a route", name)
		}
	}
}

// TestUnlistedIsDenied proves the walk above can fail and that what it
// would miss is denied anyway.
func TestUnlistedIsDenied(t *testing.T) {
	const fake = "/poh.HoldMetrics/Fake"
	if got := withoutAccess(append(rpcNames(servedRPCs()), fake, "GET /v1/secret")); !slices.Equal(got, []string{fake, "GET /v1/secret"}) {
		t.Fatalf("withoutAccess = %v, want the two fake names", got)
	}
	if a, ok := AccessOf(fake); ok || a != AccessUnlisted {
		t.Fatalf("AccessOf(%s) = %v, %v", fake, a, ok)
	}

	// gRPC: a service nobody put in the table, on a real server with the
	// daemon's interceptors.
	svc := newAuthService(t, Config{AuthToken: "s3cret"})
	lis := bufconn.Listen(1 << 16)
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(svc.AuthUnary()), grpc.ChainStreamInterceptor(svc.AuthStream()))
	called := 0
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: "poh.HoldMetrics",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Fake", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { called++; return &emptypb.Empty{}, nil }
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fake}, h)
		}}},
	}, struct{}{})
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxT(t)
	if err := conn.Invoke(ctx, fake, &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Unauthenticated || called != 0 {
		t.Fatalf("unlisted method without token: %v (handler ran %d times)", err, called)
	}
	ctxTok := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret")
	if err := conn.Invoke(ctxTok, fake, &emptypb.Empty{}, &emptypb.Empty{}); err != nil || called != 1 {
		t.Fatalf("unlisted method with token: %v (handler ran %d times)", err, called)
	}

	// HTTP: a route nobody put in the table, even with AuthReads off.
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := svc.serveRoutes([]route{{"GET /v1/secret", ok}})
	for tok, code := range map[string]int{"": 401, "wrong": 401, "s3cret": 204} {
		if got := serveOnce(h, "GET", "/v1/secret", tok); got != code {
			t.Errorf("unlisted route, token %q: %d, want %d", tok, got, code)
		}
	}
	open := newAuthService(t, Config{}).serveRoutes([]route{{"GET /v1/secret", ok}})
	if got := serveOnce(open, "GET", "/v1/secret", ""); got != 204 {
		t.Errorf("unlisted route without a configured token: %d, want 204", got)
	}
}

func serveOnce(h http.Handler, method, path, token string) int {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// allowed is the rule: with a token configured, a call without the right
// token passes only a public name, or a read without AuthReads.
func allowed(cfg Config, a Access, rightToken bool) bool {
	switch {
	case cfg.AuthToken == "" || rightToken || a == AccessPublic:
		return true
	case a == AccessRead:
		return !cfg.AuthReads
	}
	return false
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

// TestAccessMatrix checks every served RPC and route under every auth
// configuration and credential against the rule.
func TestAccessMatrix(t *testing.T) {
	stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, cfg := range []Config{{}, {AuthToken: "s3cret"}, {AuthToken: "s3cret", AuthReads: true}} {
		svc := newAuthService(t, cfg)
		unary, stream := svc.AuthUnary(), svc.AuthStream()
		var routes []route
		for _, r := range svc.routes(prometheus.NewRegistry(), HTTPOptions{Pprof: true}) {
			routes = append(routes, route{r.pattern, stub})
		}
		h := svc.serveRoutes(routes)
		for _, tok := range []string{"", "wrong", "s3cret"} {
			right := tok == "s3cret"
			ctx := context.Background()
			if tok != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
			}
			for _, m := range servedRPCs() {
				a, _ := AccessOf(m.name)
				ran := false
				var err error
				if m.stream {
					err = stream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: m.name},
						func(any, grpc.ServerStream) error { ran = true; return nil })
				} else {
					_, err = unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: m.name},
						func(context.Context, any) (any, error) { ran = true; return nil, nil })
				}
				want := allowed(cfg, a, right)
				if ran != want || (err == nil) != want || (!want && status.Code(err) != codes.Unauthenticated) {
					t.Errorf("%+v token %q: %s (%v): ran %v, err %v; want allowed %v", cfg, tok, m.name, a, ran, err, want)
				}
			}
			for _, r := range routes {
				method, path, ok := strings.Cut(r.pattern, " ")
				if !ok {
					method, path = "GET", r.pattern
				}
				a, _ := AccessOf(r.pattern)
				want := http.StatusUnauthorized
				if allowed(cfg, a, right) {
					want = http.StatusNoContent
				}
				if got := serveOnce(h, method, path, tok); got != want {
					t.Errorf("%+v token %q: %s (%v): %d, want %d", cfg, tok, r.pattern, a, got, want)
				}
			}
		}
	}
}

func TestPprofIsARead(t *testing.T) {
	for _, tt := range []struct {
		cfg       Config
		pprof     bool
		tok       string
		path      string
		wantCode  int
		wantInBod string
	}{
		{Config{}, false, "", "/debug/pprof/", 404, ""},
		{Config{}, true, "", "/debug/pprof/", 200, "goroutine"},
		{Config{AuthToken: "s3cret"}, true, "", "/debug/pprof/", 200, "goroutine"},
		{Config{AuthToken: "s3cret", AuthReads: true}, true, "", "/debug/pprof/", 401, "bearer token"},
		{Config{AuthToken: "s3cret", AuthReads: true}, true, "", "/debug/pprof/heap", 401, "bearer token"},
		{Config{AuthToken: "s3cret", AuthReads: true}, true, "", "/debug/pprof/profile?seconds=1", 401, "bearer token"},
		{Config{AuthToken: "s3cret", AuthReads: true}, true, "s3cret", "/debug/pprof/", 200, "goroutine"},
	} {
		h := newAuthService(t, tt.cfg).Handler(prometheus.NewRegistry(), HTTPOptions{Pprof: tt.pprof})
		req := httptest.NewRequest("GET", tt.path, nil)
		if tt.tok != "" {
			req.Header.Set("Authorization", "Bearer "+tt.tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantInBod) {
			t.Errorf("%+v pprof %v token %q GET %s: %d %.80q; want %d containing %q",
				tt.cfg, tt.pprof, tt.tok, tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantInBod)
		}
	}
}
