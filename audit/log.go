// Package audit mirrors every accepted write of holdmetricsd's store to
// immudb, a tamper-evident database, and verifies a store against it.
//
// Each accepted write is one record of the store (package store's
// encoding: the same bytes in the embedded log and in MongoDB) with a
// sequence number, seq = 1, 2, 3... counted from the first audited write.
// Records are mirrored in groups (one immudb transaction per group, written
// with VerifiedSet: the client checks the server's inclusion and
// consistency proofs before a write counts):
//
//	<prefix>/r/<last seq, 20 digits>  version 1 | uvarint first seq | uvarint n | n × item
//	    item = 0 | uvarint len | record          (a record up to WholeBytes)
//	         | 1 | uvarint 32 | SHA-256(record)  (a larger one)
//	<prefix>/s/<seq, 20 digits>       version 1 | uvarint len | snapshot name | SHA-256 of the snapshot
//
// Keys sort by seq, so the group holding a record is the first key at or
// after its seq. A snapshot entry says that the store's snapshot of that
// name holds the state after every record up to seq (the records it
// replaced stay in the audit). Only this package's Writer writes these keys,
// and only one Writer may write a prefix at a time (the store's lock or
// lease ensures it).
package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/codenotary/immudb/pkg/api/schema"
	immuclient "github.com/codenotary/immudb/pkg/client"
)

// WholeBytes is the largest record kept whole in the audit (verify-audit
// then names the event and field that differ); larger ones are kept as
// their SHA-256.
const WholeBytes = 4096

// maxGroupBytes bounds one group's value (immudb's default limit is 32 MiB;
// the client receives at most 4 MiB).
const maxGroupBytes = 1 << 20

// ErrDiverged: the store and the audit disagree (see Report.Divergence).
var ErrDiverged = errors.New("the store and its audit diverge")

// Config says where the audit goes.
type Config struct {
	// URL is immudb://[user[:password]@]host[:port][/database]: defaults
	// immudb:immudb, port 3322, database defaultdb.
	URL string
	// Prefix starts every key (default "holdmetrics"): one immudb
	// database can audit several stores.
	Prefix string
	// StateDir keeps the immudb client's state: the last transaction it
	// verified, so that a server that rewrote its history is caught at the
	// next connection. Default: a temp dir (trust on first use each time).
	StateDir string
	Logger   *slog.Logger
}

// Log is a connection to an audit.
type Log struct {
	c      immuclient.ImmuClient
	prefix string
	name   string
	tmp    string // StateDir made for this Log, removed by Close
	log    *slog.Logger
	open   func(context.Context) (immuclient.ImmuClient, error) // a new session (reopen)
}

// ParseURL reads an immudb:// URL.
func ParseURL(raw string) (host string, port int, user, pass, db string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "immudb" || u.Host == "" {
		return "", 0, "", "", "", fmt.Errorf("audit URL %q: want immudb://[user[:password]@]host[:port][/database]", Redact(raw))
	}
	host, port = u.Hostname(), 3322
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return "", 0, "", "", "", fmt.Errorf("audit URL %q: bad port %q", Redact(raw), p)
		}
	}
	user, pass = "immudb", "immudb"
	if u.User != nil {
		user = u.User.Username()
		if p, ok := u.User.Password(); ok {
			pass = p
		}
	}
	db = strings.Trim(u.Path, "/")
	if db == "" {
		db = "defaultdb"
	}
	return host, port, user, pass, db, nil
}

// Redact is an audit URL without its password.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "immudb://(unparsable URL)"
	}
	return u.Redacted()
}

// Dial opens a session on the audit's immudb.
func Dial(ctx context.Context, cfg Config) (*Log, error) {
	host, port, user, pass, db, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "holdmetrics"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{prefix: cfg.Prefix, name: Redact(cfg.URL), log: cfg.Logger}
	dir := cfg.StateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "holdmetrics-audit-"); err != nil {
			return nil, err
		}
		l.tmp = dir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit state dir: %w", err)
	}
	l.open = func(ctx context.Context) (immuclient.ImmuClient, error) {
		opts := immuclient.DefaultOptions().WithAddress(host).WithPort(port).WithDir(dir).WithMetrics(false)
		c := immuclient.NewClient().WithOptions(opts)
		c.WithLogger(slogAdapter{cfg.Logger})
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := c.OpenSession(dctx, []byte(user), []byte(pass), db); err != nil {
			return nil, fmt.Errorf("audit %s: %w", l.name, err)
		}
		return c, nil
	}
	if l.c, err = l.open(ctx); err != nil {
		l.removeTmp()
		return nil, err
	}
	return l, nil
}

// reopen replaces the session (a server that restarted forgot it); the
// client's state, in StateDir, carries over.
func (l *Log) reopen(ctx context.Context) error {
	c, err := l.open(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_ = l.c.CloseSession(cctx)
	cancel()
	l.c = c
	return nil
}

func (l *Log) removeTmp() {
	if l.tmp != "" {
		os.RemoveAll(l.tmp)
	}
}

// Close ends the session.
func (l *Log) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.c.CloseSession(ctx)
	l.removeTmp()
	return err
}

// String names the audit (its URL without the password).
func (l *Log) String() string { return l.name }

func (l *Log) recKey(seq int64) []byte  { return fmt.Appendf(nil, "%s/r/%020d", l.prefix, seq) }
func (l *Log) snapKey(seq int64) []byte { return fmt.Appendf(nil, "%s/s/%020d", l.prefix, seq) }
func (l *Log) recPrefix() []byte        { return []byte(l.prefix + "/r/") }
func (l *Log) snapPrefix() []byte       { return []byte(l.prefix + "/s/") }

// item is one record in a group: the record, or its SHA-256 when hashed.
type item struct {
	hashed bool
	data   []byte
}

// group is the records first..first+len(items)-1.
type group struct {
	first int64
	items []item
}

func (g group) last() int64 { return g.first + int64(len(g.items)) - 1 }

func encodeGroup(g group) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(g.first))
	b = binary.AppendUvarint(b, uint64(len(g.items)))
	for _, it := range g.items {
		form := byte(0)
		if it.hashed {
			form = 1
		}
		b = append(b, form)
		b = binary.AppendUvarint(b, uint64(len(it.data)))
		b = append(b, it.data...)
	}
	return b
}

var errBadEntry = errors.New("malformed audit entry")

func decodeGroup(b []byte) (group, error) {
	var g group
	if len(b) == 0 || b[0] != 1 {
		return g, fmt.Errorf("%w: unknown version", errBadEntry)
	}
	b = b[1:]
	first, n1 := binary.Uvarint(b)
	if n1 <= 0 {
		return g, errBadEntry
	}
	b = b[n1:]
	count, n2 := binary.Uvarint(b)
	if n2 <= 0 || count > uint64(len(b)) {
		return g, errBadEntry
	}
	b = b[n2:]
	g.first = int64(first)
	for i := uint64(0); i < count; i++ {
		if len(b) < 1 || b[0] > 1 {
			return g, errBadEntry
		}
		hashed := b[0] == 1
		size, n := binary.Uvarint(b[1:])
		if n <= 0 || size > uint64(len(b)-1-n) || hashed && size != 32 {
			return g, errBadEntry
		}
		b = b[1+n:]
		g.items = append(g.items, item{hashed: hashed, data: b[:size]})
		b = b[size:]
	}
	if len(b) != 0 {
		return g, fmt.Errorf("%w: trailing bytes", errBadEntry)
	}
	return g, nil
}

// snapEntry is a snapshot entry.
type snapEntry struct {
	seq    int64
	name   string
	digest [32]byte
}

func encodeSnap(e snapEntry) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(e.name)))
	b = append(b, e.name...)
	return append(b, e.digest[:]...)
}

func decodeSnap(seq int64, b []byte) (snapEntry, error) {
	e := snapEntry{seq: seq}
	if len(b) == 0 || b[0] != 1 {
		return e, fmt.Errorf("%w: unknown version", errBadEntry)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) != n+32 {
		return e, errBadEntry
	}
	e.name = string(b[1+k : 1+k+int(n)])
	copy(e.digest[:], b[1+k+int(n):])
	return e, nil
}

func seqOf(key, prefix []byte) (int64, error) {
	s := strings.TrimPrefix(string(key), string(prefix))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || len(s) != 20 {
		return 0, fmt.Errorf("%w: key %q", errBadEntry, key)
	}
	return v, nil
}

// putGroup writes a group with a verified write.
func (l *Log) putGroup(ctx context.Context, g group) error {
	if _, err := l.c.VerifiedSet(ctx, l.recKey(g.last()), encodeGroup(g)); err != nil {
		return fmt.Errorf("audit %s: write records %d..%d: %w", l.name, g.first, g.last(), err)
	}
	return nil
}

func (l *Log) putSnap(ctx context.Context, e snapEntry) error {
	if _, err := l.c.VerifiedSet(ctx, l.snapKey(e.seq), encodeSnap(e)); err != nil {
		return fmt.Errorf("audit %s: write snapshot entry %d: %w", l.name, e.seq, err)
	}
	return nil
}

// keys lists the keys under prefix from seek on (inclusive), ascending, up
// to limit (0: all). Listing is not verified; every value read is
// (getGroup, snaps).
func (l *Log) keys(ctx context.Context, prefix, seek []byte, desc bool, limit int) ([][]byte, error) {
	var out [][]byte
	inclusive := true
	for {
		page := uint64(1000)
		if limit > 0 && limit-len(out) < 1000 {
			page = uint64(limit - len(out))
		}
		req := &schema.ScanRequest{Prefix: prefix, SeekKey: seek, InclusiveSeek: inclusive, Desc: desc, Limit: page}
		es, err := l.c.Scan(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("audit %s: list %s: %w", l.name, prefix, err)
		}
		for _, e := range es.Entries {
			out = append(out, e.Key)
		}
		if len(es.Entries) < int(page) || limit > 0 && len(out) >= limit {
			return out, nil
		}
		seek, inclusive = es.Entries[len(es.Entries)-1].Key, false
	}
}

// getGroup reads, verified, the group under key.
func (l *Log) getGroup(ctx context.Context, key []byte) (group, error) {
	e, err := l.c.VerifiedGet(ctx, key)
	if err != nil {
		return group{}, fmt.Errorf("audit %s: read %s: %w", l.name, key, err)
	}
	g, err := decodeGroup(e.Value)
	if err != nil {
		return g, fmt.Errorf("audit %s: %s: %w", l.name, key, err)
	}
	if last, err := seqOf(key, l.recPrefix()); err != nil || last != g.last() {
		return g, fmt.Errorf("audit %s: %s holds records %d..%d: %w", l.name, key, g.first, g.last(), errBadEntry)
	}
	return g, nil
}

// lastGroup is the newest group (ok false when the audit is empty).
func (l *Log) lastGroup(ctx context.Context) (group, bool, error) {
	ks, err := l.keys(ctx, l.recPrefix(), nil, true, 1)
	if err != nil || len(ks) == 0 {
		return group{}, false, err
	}
	g, err := l.getGroup(ctx, ks[0])
	return g, err == nil, err
}

// groupAt is the group holding seq (ok false past the end).
func (l *Log) groupAt(ctx context.Context, seq int64) (group, bool, error) {
	ks, err := l.keys(ctx, l.recPrefix(), l.recKey(seq), false, 1)
	if err != nil || len(ks) == 0 {
		return group{}, false, err
	}
	g, err := l.getGroup(ctx, ks[0])
	if err == nil && g.first > seq {
		return g, false, fmt.Errorf("audit %s: records %d..%d are missing", l.name, seq, g.first-1)
	}
	return g, err == nil, err
}

// snaps reads every snapshot entry, verified, oldest first.
func (l *Log) snaps(ctx context.Context) ([]snapEntry, error) {
	ks, err := l.keys(ctx, l.snapPrefix(), nil, false, 0)
	if err != nil {
		return nil, err
	}
	var out []snapEntry
	for _, k := range ks {
		seq, err := seqOf(k, l.snapPrefix())
		if err != nil {
			return nil, err
		}
		e, err := l.c.VerifiedGet(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("audit %s: read %s: %w", l.name, k, err)
		}
		se, err := decodeSnap(seq, e.Value)
		if err != nil {
			return nil, fmt.Errorf("audit %s: %s: %w", l.name, k, err)
		}
		out = append(out, se)
	}
	return out, nil
}

// slogAdapter is the immudb client's logger on slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, v ...any)   { a.l.Error("immudb client: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warningf(f string, v ...any) { a.l.Warn("immudb client: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Infof(f string, v ...any)    { a.l.Debug("immudb client: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Debugf(f string, v ...any)   { a.l.Debug("immudb client: " + fmt.Sprintf(f, v...)) }
func (a slogAdapter) Close() error                { return nil }
