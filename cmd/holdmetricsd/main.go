// Command holdmetricsd is the poh-holdmetrics daemon: the gRPC service of
// proto/hold.proto, the HTTP JSON API, /metrics and health, over one
// core.Aggregator whose writes go to a durable embedded store.
//
// This file wires listeners, signals and shutdown in one run group; the
// handlers live in server/, the store in store/, the domain in core/.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/server"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

func main() {
	if err := realMain(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "holdmetricsd:", err)
		os.Exit(1)
	}
}

// realMain runs the daemon; stdout takes --print-config-schema's output.
func realMain(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "repair" {
		return repair(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "verify-audit" {
		return verifyAudit(args[1:], stdout)
	}
	cfg, err := loadConfig(args, os.Getenv)
	if err != nil {
		switch {
		case errors.Is(err, flagHelp):
			return nil
		case errors.Is(err, printSchema):
			b, err := configSchema()
			if err == nil {
				_, err = stdout.Write(b)
			}
			return err
		}
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	token := ""
	if cfg.AuthTokenFile != "" {
		b, err := os.ReadFile(cfg.AuthTokenFile)
		if err != nil {
			return fmt.Errorf("auth_token_file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("auth_token_file %s: empty", cfg.AuthTokenFile)
		}
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls_cert/tls_key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	win, _ := cfg.campaignWindow() // validated by loadConfig
	agg, err := core.New(core.Options{TTL: cfg.TTL, Registerer: reg, History: cfg.History, Window: win, Exact: cfg.Exact})
	if err != nil {
		return err
	}
	defer agg.Close()

	health := &storeHealth{}
	// w is the one writer every write goes through: the store (see
	// storage.go), or the aggregator itself in memory-only mode.
	w, err := openWriter(cfg, agg, log, health)
	if err != nil {
		return err
	}

	svc := server.NewService(agg, w, server.Config{
		MaxBatch: cfg.MaxBatch, MaxBodyBytes: cfg.MaxBodyBytes,
		AuthToken: token, AuthReads: cfg.AuthReads, Logger: log,
		MaxInFlight: cfg.MaxInFlight, MaxRowErrors: cfg.MaxRowErrors,
	})

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		closeWriter(w, log)
		return fmt.Errorf("grpc_addr: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		closeWriter(w, log)
		return fmt.Errorf("http_addr: %w", err)
	}
	// Bounded connections: past max_conns a new connection waits in the
	// accept queue instead of taking a descriptor the store needs.
	grpcLis, httpLis = netutil.LimitListener(grpcLis, cfg.MaxConns), netutil.LimitListener(httpLis, cfg.MaxConns)

	gs, hs := newGRPCServer(svc, tlsCfg, log, cfg)
	health.attach(hs)
	httpSrv := &http.Server{
		// --debug-pprof adds /debug/pprof/ (a read in the auth table).
		Handler:           svc.Handler(reg, server.HTTPOptions{Pprof: cfg.DebugPprof}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsCfg,
	}

	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("holdmetricsd listening", "grpc", grpcLis.Addr().String(),
		"http", scheme+"://"+httpLis.Addr().String(), "data_dir", dataDirForLog(cfg), "fsync", cfg.Fsync,
		"auth", token != "", "tls", tlsCfg != nil, "history", cfg.History, "window", cfg.Window)

	var g run.Group
	// Signals: the first SIGINT/SIGTERM starts the drain; the run group
	// then interrupts every actor below.
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	g.Add(func() error {
		<-ctx.Done()
		log.Info("shutdown requested: draining")
		return nil
	}, func(error) { stopSignals() })

	g.Add(func() error { return gs.Serve(grpcLis) }, func(error) {
		hs.Shutdown() // health: NOT_SERVING for every service
		svc.Drain()   // writes refused, Broadcast streams finish
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(cfg.DrainTimeout):
			log.Warn("drain deadline passed; closing remaining gRPC streams")
			gs.Stop()
		}
	})

	g.Add(func() error {
		var err error
		if tlsCfg != nil {
			err = httpSrv.ServeTLS(httpLis, "", "")
		} else {
			err = httpSrv.Serve(httpLis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}, func(error) {
		svc.Drain()
		ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		defer cancel()
		_ = httpSrv.Shutdown(ctx)
	})

	if cfg.TTL > 0 {
		// The aggregator's GC loop (the tree has one), collecting through
		// the writer so that the store logs each collection.
		if err := agg.StartGC(cfg.GCInterval, func(now int64) {
			if n, err := svc.GC(now); err != nil {
				log.Warn("gc", "err", err)
			} else if n > 0 {
				log.Debug("gc", "evicted", n)
			}
		}); err != nil {
			closeWriter(w, log)
			return err
		}
	}

	runErr := g.Run()
	agg.StopGC()
	if err := closeWriter(w, log); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		log.Error("stopped with error", "err", runErr)
		return runErr
	}
	log.Info("stopped cleanly")
	return nil
}

// newGRPCServer is the daemon's gRPC server: both poh services, health and
// reflection, every call through the recovery and auth interceptors (the
// auth table in server/auth.go covers each method registered here).
func newGRPCServer(svc *server.Service, tlsCfg *tls.Config, log *slog.Logger, cfg config) (*grpc.Server, *health.Server) {
	logf := func(msg string, kv ...any) { log.Error(msg, kv...) }
	opts := append(svc.GRPCOptions(logf),
		grpc.MaxRecvMsgSize(int(cfg.GRPCMaxRecv)),
		// Idle connections (a preface, then nothing) are closed; clients
		// that ping too often are cut off.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: cfg.GRPCIdle,
			MaxConnectionAge: cfg.GRPCMaxAge, MaxConnectionAgeGrace: cfg.DrainTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.GRPCPingMin}),
		grpc.ConnectionTimeout(10*time.Second),
		// A pool of stream goroutines: a new goroutine per unary call
		// spent ~15% of the daemon's CPU growing its stack.
		grpc.NumStreamWorkers(streamWorkers),
	)
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	gs := grpc.NewServer(opts...)
	server.NewGRPC(svc).Register(gs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	for _, name := range []string{"", "poh.HoldMetrics", "poh.HoldMetricsQuery"} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return gs, hs
}

// repair is `holdmetricsd repair --data-dir DIR`: the operator's action
// after the store refused to start over a damaged log (store.ErrCorrupt).
// It cuts the log at the first damaged record, keeping what it cut beside
// the log (*.cut files), so that the next start recovers everything before
// the damage. It takes the dir's lock: stop the daemon first.
func repair(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("holdmetricsd repair", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "the data dir whose log to cut at its first damaged record")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		return errors.New("usage: holdmetricsd repair --data-dir DIR")
	}
	rep, err := store.Repair(*dir)
	if err != nil {
		return fmt.Errorf("repair %s: %w", *dir, err)
	}
	if rep.CutAt == "" {
		fmt.Fprintf(stdout, "%s: the log has no damaged record; nothing changed\n", *dir)
		return nil
	}
	fmt.Fprintf(stdout, "%s: cut the log at %s (%d bytes); kept them in %s\n", *dir, rep.CutAt, rep.CutBytes,
		strings.Join(rep.KeptAs, ", "))
	return nil
}

// storeHealth forwards the store's failures and recoveries to the gRPC
// health service (NOT_SERVING while the store cannot write), which exists
// only after the store is open.
type storeHealth struct {
	mu  sync.Mutex
	hs  *health.Server
	err error
}

func (h *storeHealth) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	h.apply()
}

func (h *storeHealth) attach(hs *health.Server) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hs = hs
	h.apply()
}

func (h *storeHealth) apply() {
	if h.hs == nil {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if h.err != nil {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for _, name := range []string{"", "poh.HoldMetrics", "poh.HoldMetricsQuery"} {
		h.hs.SetServingStatus(name, st)
	}
}

// streamWorkers bounds the pooled stream goroutines; calls beyond it still
// get their own goroutine. Unary Record waits for the log, so the pool is
// sized for many concurrent callers, not for the cores.
const streamWorkers = 64

func dataDirForLog(cfg config) string {
	switch {
	case cfg.InMemory:
		return "(in memory)"
	case cfg.Store != "":
		return mongostore.Redact(cfg.Store)
	}
	return cfg.DataDir
}

// closeWriter flushes, syncs and snapshots the store (nothing to do in
// memory).
func closeWriter(w core.Writer, log *slog.Logger) error {
	t0 := time.Now()
	if err := w.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	log.Info("writer flushed and closed", "duration_ms", time.Since(t0).Milliseconds())
	return nil
}
