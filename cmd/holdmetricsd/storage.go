package main

// Store selection: the embedded log in data_dir or MongoDB (store), each
// optionally mirrored to immudb (audit_immudb), and the verify-audit
// subcommand that checks a store against its audit.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/audit"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

// auditStateDir keeps the immudb client's state (the last transaction it
// verified) beside the data dir, not in it: the embedded log owns its dir.
func auditStateDir(dataDir string) string { return dataDir + ".audit-state" }

// openWriter opens the configured store and returns the writer every write
// goes through: the aggregator itself (in_memory), the embedded log, or
// MongoDB, with the audit around it when audit_immudb is set.
func openWriter(cfg config, agg *core.Aggregator, log *slog.Logger, health *storeHealth) (core.Writer, error) {
	if cfg.InMemory {
		log.Warn("in-memory mode: nothing is stored, events are lost on exit")
		return core.Memory(agg), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	relay := &healthRelay{health: health}
	snapBytes := cfg.SnapshotBytes
	if cfg.AuditImmudb != "" {
		snapBytes = -1 // the audit takes the snapshots, between two mirrored writes
	}
	t0 := time.Now()
	var st audit.Store
	if cfg.Store == "" {
		s, rec, err := store.Open(cfg.DataDir, agg, store.Options{
			Fsync: store.Fsync(cfg.Fsync), FsyncInterval: cfg.FsyncInterval,
			SnapshotBytes: snapBytes, Logger: log, OnHealth: relay.set,
		})
		if err != nil {
			return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
		}
		log.Info("store recovered", "data_dir", cfg.DataDir, "fsync", cfg.Fsync, "snapshot", rec.Snapshot,
			"snapshot_holders", rec.Holders, "segments", rec.Segments, "records", rec.Records,
			"events_replayed", rec.Events, "holders", agg.Len(), "truncated_at", rec.TruncatedAt,
			"duration_ms", time.Since(t0).Milliseconds())
		st = audit.Embedded(s)
	} else {
		s, rec, err := mongostore.Open(ctx, cfg.Store, agg, mongostore.Options{
			LeaseTTL: cfg.StoreLeaseTTL, SnapshotBytes: snapBytes, Logger: log, OnHealth: relay.set,
		})
		if err != nil {
			return nil, err
		}
		log.Info("store recovered", "store", s.String(), "database", rec.Database, "snapshot_seq", rec.Snapshot,
			"snapshot_holders", rec.Holders, "records", rec.Records, "events_replayed", rec.Events,
			"holders", agg.Len(), "duration_ms", time.Since(t0).Milliseconds())
		st = audit.Mongo(s)
	}
	if cfg.AuditImmudb == "" {
		return st, nil
	}
	l, err := audit.Dial(ctx, audit.Config{URL: cfg.AuditImmudb, Prefix: cfg.AuditPrefix,
		StateDir: auditStateDir(cfg.DataDir), Logger: log})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("audit_immudb: %w", err)
	}
	aw, err := audit.NewWriter(ctx, st, l, audit.Options{SnapshotBytes: cfg.SnapshotBytes, Logger: log})
	if err != nil {
		l.Close()
		st.Close()
		return nil, fmt.Errorf("audit_immudb %s: %w", l, err)
	}
	relay.attach(aw)
	log.Info("audit on", "immudb", l.String(), "key_prefix", cfg.AuditPrefix)
	return aw, nil
}

// healthRelay passes the store's health to the daemon's readiness and, once
// there is one, to the audit (which must hear of a store failure before the
// store heals).
type healthRelay struct {
	health *storeHealth
	mu     sync.Mutex
	aw     *audit.Writer
}

func (r *healthRelay) set(err error) {
	r.health.set(err)
	r.mu.Lock()
	aw := r.aw
	r.mu.Unlock()
	if aw != nil {
		aw.StoreFailed(err)
	}
}

func (r *healthRelay) attach(aw *audit.Writer) {
	r.mu.Lock()
	r.aw = aw
	r.mu.Unlock()
}

// verifyAudit is `holdmetricsd verify-audit`: it compares a store (an
// embedded log's data dir, read without its lock, or a MongoDB database,
// read without its lease: the daemon may run) with its immudb audit, every
// audited value read with immudb's proofs checked, and reports the first
// divergence (exit status 1).
func verifyAudit(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("holdmetricsd verify-audit", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "the embedded log's data dir to verify")
	uri := fs.String("store", "", "or the mongodb:// store to verify")
	immu := fs.String("audit-immudb", os.Getenv(envName("audit_immudb")), "the audit: immudb://user:password@host:port/database (env "+envName("audit_immudb")+")")
	prefix := fs.String("audit-key-prefix", "holdmetrics", "the store's key prefix in immudb")
	state := fs.String("audit-state-dir", "", "the immudb client state to check the server against (default: DATA_DIR"+
		".audit-state when it exists, the daemon's; else none: the server's current state is trusted)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if (*dir == "") == (*uri == "") || *immu == "" || fs.NArg() > 0 {
		return errors.New("usage: holdmetricsd verify-audit (--data-dir DIR | --store mongodb://...) --audit-immudb immudb://... [--audit-key-prefix P]")
	}
	if *state == "" && *dir != "" {
		if _, err := os.Stat(auditStateDir(*dir)); err == nil {
			*state = auditStateDir(*dir)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var r audit.Reader = audit.LogDir(*dir)
	what := *dir
	if *uri != "" {
		mr, err := mongostore.OpenReader(ctx, *uri)
		if err != nil {
			return err
		}
		defer mr.Close()
		r, what = audit.MongoReader(mr), mongostore.Redact(*uri)
	}
	l, err := audit.Dial(ctx, audit.Config{URL: *immu, Prefix: *prefix, StateDir: *state})
	if err != nil {
		return err
	}
	defer l.Close()
	rep, err := audit.Verify(ctx, l, r)
	if rep != nil && rep.Divergence != "" {
		fmt.Fprintf(stdout, "%s: DIVERGES from its audit %s: %s\n", what, l, rep.Divergence)
		return err
	}
	if err != nil {
		return err
	}
	snap := rep.Snapshot
	if snap == "" {
		snap = "none"
	}
	fmt.Fprintf(stdout, "%s: matches its audit %s: snapshot %s, records %d..%d (the audit has %d records)\n",
		what, l, snap, rep.From, rep.To, rep.Audited)
	return nil
}
