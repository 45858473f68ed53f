// Package dbtest starts real database servers on loopback for tests and
// benchmarks (never mocks): FerretDB v1 with its SQLite backend embedded in
// the test binary (a MongoDB wire protocol server), and immudb from the
// binary scripts/build-dbserver.sh builds and caches under build/. Only
// _test files import it, so no shipped binary links FerretDB.
package dbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// FerretDB starts an embedded FerretDB (SQLite in a temp dir) on 127.0.0.1
// and returns its mongodb:// URI with database db; it stops when tb ends.
func FerretDB(tb testing.TB, db string) string {
	tb.Helper()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + tb.TempDir() + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatalf("ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	u, err := url.Parse(f.MongoDBURI()) // waits for the listener
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// Root is the repository's root (the directory of go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("dbtest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildErr = map[string]error{}
)

// Binary is the path of a server binary built by scripts/build-dbserver.sh
// (name "immudb" or "ferretdb"), building it on first use (a minute or two
// cold, cached under build/dbservers/). tb is skipped, with the reason,
// when it cannot be built.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if err, ok := buildErr[name]; ok {
		tb.Skipf("%s cannot be built here, so this test cannot run: %v", name, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(Root(tb), "scripts", "build-dbserver.sh"), name)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		buildErr[name] = fmt.Errorf("scripts/build-dbserver.sh %s: %v: %s", name, err, msg)
		tb.Skipf("%s cannot be built here, so this test cannot run: %v", name, buildErr[name])
	}
	p := strings.TrimSpace(stdout.String())
	built[name] = p
	return p
}

// Immudb is a running immudb server.
type Immudb struct {
	Host string
	Port int
	Dir  string // its data dir
	bin  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	log  *bytes.Buffer
}

// StartImmudb starts immudb (built by Binary) on a free loopback port with
// a fresh data dir (synced writes off: tests do not need them; the server
// promise is the same otherwise) and stops it, by its PID, when tb ends.
func StartImmudb(tb testing.TB) *Immudb {
	tb.Helper()
	im := &Immudb{Host: "127.0.0.1", Dir: tb.TempDir(), bin: Binary(tb, "immudb")}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		im.Port = freePort(tb) // another process may take it before immudb does: retried
		if err = im.start(); err == nil {
			tb.Cleanup(im.Stop)
			return im
		}
	}
	tb.Fatalf("immudb did not start: %v", err)
	return nil
}

// Restart starts a stopped server again, on the same port and data dir.
func (im *Immudb) Restart(tb testing.TB) {
	tb.Helper()
	if err := im.start(); err != nil {
		tb.Fatalf("immudb did not restart: %v", err)
	}
}

func (im *Immudb) start() error {
	im.log = &bytes.Buffer{}
	im.cmd = exec.Command(im.bin, "--dir", im.Dir, "--address", im.Host, "--port", strconv.Itoa(im.Port),
		"--pgsql-server=false", "--metrics-server=false", "--web-server=false", "--synced=false")
	im.cmd.Stdout, im.cmd.Stderr = im.log, im.log
	if err := im.cmd.Start(); err != nil {
		im.cmd = nil
		return err
	}
	im.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(im.cmd, im.done)
	if err := im.waitListening(30 * time.Second); err != nil {
		im.Stop()
		return fmt.Errorf("%w\n%s", err, im.log.String())
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s).
func (im *Immudb) Stop() {
	if im.cmd == nil {
		return
	}
	_ = im.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-im.done:
	case <-time.After(10 * time.Second):
		_ = im.cmd.Process.Kill()
		<-im.done
	}
	im.cmd = nil
}

// Addr is host:port.
func (im *Immudb) Addr() string { return fmt.Sprintf("%s:%d", im.Host, im.Port) }

// URL is the immudb:// URL of its defaultdb with the default credentials.
func (im *Immudb) URL() string { return fmt.Sprintf("immudb://immudb:immudb@%s/defaultdb", im.Addr()) }

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening polls the server's address until it accepts a connection,
// the process exits, or the timeout passes.
func (im *Immudb) waitListening(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", im.Addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-im.done:
			return errors.New("the server exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after %s", im.Addr(), timeout)
}
