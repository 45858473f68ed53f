package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/server"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// config is every setting, with its flag / env / TOML key derived from the
// `key` tag: flag --grpc-addr, env POH_HOLDMETRICS_GRPC_ADDR, TOML grpc_addr.
type config struct {
	GRPCAddr      string        `key:"grpc_addr" help:"gRPC listen address"`
	HTTPAddr      string        `key:"http_addr" help:"HTTP (JSON API, health, /metrics) listen address"`
	Expose        bool          `key:"expose" help:"allow listening on non-loopback addresses"`
	DataDir       string        `key:"data_dir" help:"data directory of the embedded store"`
	InMemory      bool          `key:"in_memory" help:"keep nothing on disk (events are lost on exit)"`
	Fsync         string        `key:"fsync" help:"fsync policy: always, interval or none"`
	FsyncInterval time.Duration `key:"fsync_interval" help:"fsync period of the interval policy"`
	SnapshotBytes int64         `key:"snapshot_bytes" help:"log bytes between snapshots (bounds restart time; <0: never)"`
	TTL           time.Duration `key:"ttl" help:"drop holders idle longer than this with no open hold (0: never)"`
	GCInterval    time.Duration `key:"gc_interval" help:"how often the TTL GC runs"`
	LogLevel      string        `key:"log_level" help:"debug, info, warn or error"`
	AuthTokenFile string        `key:"auth_token_file" help:"file holding a bearer token required for writes"`
	AuthReads     bool          `key:"auth_reads" help:"require the bearer token for reads too"`
	TLSCert       string        `key:"tls_cert" help:"TLS certificate (PEM) for both listeners"`
	TLSKey        string        `key:"tls_key" help:"TLS key (PEM)"`
	MaxBatch      int           `key:"max_batch" help:"largest batch (events) of one request"`
	MaxBodyBytes  int64         `key:"max_body_bytes" help:"largest HTTP request body"`
	DrainTimeout  time.Duration `key:"drain_timeout" help:"how long shutdown waits for in-flight requests"`
	DebugPprof    bool          `key:"debug_pprof" help:"serve /debug/pprof/ on the HTTP listener (profiling; keep off in production)"`
	History       bool          `key:"history" help:"keep every closed hold (about 24 bytes each) so top/stats answer for any window"`
	Window        string        `key:"window" help:"campaign window T0,T1 (Unix seconds or RFC 3339): every hold is clipped to [T0, T1) when recorded"`
}

func defaults() config {
	return config{
		GRPCAddr:      "127.0.0.1:60051",
		HTTPAddr:      "127.0.0.1:9100",
		DataDir:       defaultDataDir(),
		Fsync:         string(store.FsyncInterval),
		FsyncInterval: 5 * time.Millisecond,
		SnapshotBytes: 256 << 20,
		GCInterval:    time.Minute,
		LogLevel:      "info",
		MaxBatch:      1 << 20,
		MaxBodyBytes:  16 << 20,
		DrainTimeout:  10 * time.Second,
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "holdmetricsd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "holdmetricsd")
	}
	return "holdmetricsd-data"
}

const envPrefix = "POH_HOLDMETRICS_"

// flagHelp: -h was asked for and printed; exit 0.
var flagHelp = flag.ErrHelp

// loadConfig applies, lowest first: defaults, the TOML file (--config or
// POH_HOLDMETRICS_CONFIG), POH_HOLDMETRICS_* env vars, flags. Every error
// names the key it is about.
func loadConfig(args []string, getenv func(string) string) (config, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("holdmetricsd", flag.ContinueOnError)
	configPath := fs.String("config", getenv(envPrefix+"CONFIG"), "TOML config file (env "+envPrefix+"CONFIG)")
	// Flags are parsed into strings first so precedence can be applied
	// after the file and env are read.
	set := map[string]*string{}
	fields := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < fields.NumField(); i++ {
		f := fields.Type().Field(i)
		key := f.Tag.Get("key")
		name := strings.ReplaceAll(key, "_", "-")
		def := fmt.Sprint(fields.Field(i).Interface())
		if fields.Field(i).Kind() == reflect.Bool {
			fs.BoolFunc(name, f.Tag.Get("help")+" (env "+envPrefix+strings.ToUpper(key)+")", func(s string) error {
				v := s
				set[key] = &v
				return nil
			})
			continue
		}
		fs.Func(name, f.Tag.Get("help")+" (default "+def+"; env "+envPrefix+strings.ToUpper(key)+")", func(s string) error {
			v := s
			set[key] = &v
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, flagHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		md, err := toml.DecodeFile(*configPath, &tomlView{&cfg})
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", *configPath, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return cfg, fmt.Errorf("config %s: unknown key %q", *configPath, und[0].String())
		}
	}
	for i := 0; i < fields.NumField(); i++ {
		key := fields.Type().Field(i).Tag.Get("key")
		if v := getenv(envPrefix + strings.ToUpper(key)); v != "" {
			if err := setField(fields.Field(i), v); err != nil {
				return cfg, fmt.Errorf("env %s%s: %w", envPrefix, strings.ToUpper(key), err)
			}
		}
		if v, ok := set[key]; ok {
			if err := setField(fields.Field(i), *v); err != nil {
				return cfg, fmt.Errorf("flag --%s: %w", strings.ReplaceAll(key, "_", "-"), err)
			}
		}
	}
	return cfg, cfg.validate()
}

func setField(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration (e.g. 5ms, 1h)", s)
			}
			v.SetInt(int64(d))
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// tomlView decodes TOML keys onto config fields by their `key` tag, with
// durations as strings ("5ms").
type tomlView struct{ c *config }

func (t *tomlView) UnmarshalTOML(data any) error {
	m, ok := data.(map[string]any)
	if !ok {
		return errors.New("top level must be a table")
	}
	fields := reflect.ValueOf(t.c).Elem()
	for k, raw := range m {
		found := false
		for i := 0; i < fields.NumField(); i++ {
			if fields.Type().Field(i).Tag.Get("key") != k {
				continue
			}
			found = true
			var s string
			switch x := raw.(type) {
			case string:
				s = x
			case bool:
				s = strconv.FormatBool(x)
			case int64:
				s = strconv.FormatInt(x, 10)
			default:
				return fmt.Errorf("key %s: unsupported value %v", k, raw)
			}
			if err := setField(fields.Field(i), s); err != nil {
				return fmt.Errorf("key %s: %w", k, err)
			}
		}
		if !found {
			return fmt.Errorf("unknown key %q", k)
		}
	}
	return nil
}

func (c *config) validate() error {
	if _, err := store.ParseFsync(c.Fsync); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	for _, a := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %v", a.key, a.addr, err)
		}
		if !c.Expose && !isLoopback(host) {
			return fmt.Errorf("%s %q is not a loopback address; set expose (--expose) to listen on it", a.key, a.addr)
		}
	}
	switch {
	case !c.InMemory && c.DataDir == "":
		return errors.New("data_dir: empty (use in_memory to run without a store)")
	case c.FsyncInterval <= 0:
		return fmt.Errorf("fsync_interval %v: must be > 0", c.FsyncInterval)
	case c.TTL < 0:
		return fmt.Errorf("ttl %v: must be >= 0", c.TTL)
	case c.TTL > 0 && c.GCInterval <= 0:
		return fmt.Errorf("gc_interval %v: must be > 0", c.GCInterval)
	case c.MaxBatch <= 0:
		return fmt.Errorf("max_batch %d: must be > 0", c.MaxBatch)
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("max_body_bytes %d: must be > 0", c.MaxBodyBytes)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("tls_cert and tls_key: set both or neither")
	case c.AuthReads && c.AuthTokenFile == "":
		return errors.New("auth_reads: needs auth_token_file")
	case c.DrainTimeout <= 0:
		return fmt.Errorf("drain_timeout %v: must be > 0", c.DrainTimeout)
	}
	if _, err := c.campaignWindow(); err != nil {
		return err
	}
	return nil
}

// campaignWindow is the parsed window setting; nil when unset.
func (c *config) campaignWindow() (*core.Window, error) {
	if c.Window == "" {
		return nil, nil
	}
	w, err := server.ParseWindow(c.Window)
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", c.Window, err)
	}
	return &w, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
