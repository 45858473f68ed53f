package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/poh-holdmetrics/poh-holdmetrics/audit"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/server"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

// config is every setting, with its flag / env / TOML key derived from the
// `key` tag: flag --grpc-addr, env POH_HOLDMETRICS_GRPC_ADDR, TOML grpc_addr.
// `help` is the flag's help; `computed` says how a default that depends on
// the environment is found (the schema then has no fixed default). The
// schema (--print-config-schema, testdata/holdmetricsd-config.schema.json)
// is generated from these tags and defaults().
type config struct {
	GRPCAddr      string        `key:"grpc_addr" help:"gRPC listen address"`
	HTTPAddr      string        `key:"http_addr" help:"HTTP (JSON API, health, /metrics) listen address"`
	Expose        bool          `key:"expose" help:"allow listening on non-loopback addresses"`
	DataDir       string        `key:"data_dir" help:"data directory of the embedded store" computed:"$XDG_STATE_HOME/holdmetricsd, else $HOME/.local/state/holdmetricsd, else ./holdmetricsd-data"`
	InMemory      bool          `key:"in_memory" help:"keep nothing on disk (events are lost on exit)"`
	Fsync         string        `key:"fsync" help:"fsync policy: always, interval or none"`
	FsyncInterval time.Duration `key:"fsync_interval" help:"fsync period of the interval policy"`
	SnapshotBytes int64         `key:"snapshot_bytes" help:"log bytes between snapshots (bounds restart time; <0: never)"`
	Store         string        `key:"store" help:"where accepted writes are kept: empty for the embedded log in data_dir, or a mongodb:// URI (the database is its path, default holdmetrics)"`
	StoreLeaseTTL time.Duration `key:"store_lease_ttl" help:"mongodb store: how long the lease of a daemon that died keeps another from writing the database"`
	AuditImmudb   string        `key:"audit_immudb" help:"also mirror every accepted write to immudb, verified: immudb://user:password@host:port/database (empty: no audit)"`
	AuditPrefix   string        `key:"audit_key_prefix" help:"prefix of this store's keys in immudb"`
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
	MaxInFlight   int           `key:"max_in_flight" help:"requests served at once, both listeners (more are refused: 503 / RESOURCE_EXHAUSTED)"`
	MaxRowErrors  int           `key:"max_row_errors" help:"rejected rows a partial batch's reply lists (the reply counts them all)"`
	GRPCMaxRecv   int64         `key:"grpc_max_recv_bytes" help:"largest gRPC request message"`
	MaxConns      int           `key:"max_conns" help:"open connections per listener (more wait to be accepted)"`
	GRPCIdle      time.Duration `key:"grpc_idle_timeout" help:"close a gRPC connection with no call for this long"`
	GRPCMaxAge    time.Duration `key:"grpc_max_conn_age" help:"close any gRPC connection after this long, gracefully (0: never)"`
	GRPCPingMin   time.Duration `key:"grpc_keepalive_min_time" help:"a client pinging more often than this is disconnected"`
	DebugPprof    bool          `key:"debug_pprof" help:"serve /debug/pprof/ on the HTTP listener (profiling; keep off in production)"`
	History       bool          `key:"history" help:"keep every closed hold (about 24 bytes each) so top/stats answer for any window"`
	Exact         bool          `key:"exact" help:"exact mode: integer weights up to 2^256-1 (decimal strings in JSON, weight_exact in gRPC) and exact integer scores"`
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
		StoreLeaseTTL: 15 * time.Second,
		AuditPrefix:   "holdmetrics",
		GCInterval:    time.Minute,
		LogLevel:      "info",
		MaxBatch:      1 << 20,
		MaxBodyBytes:  16 << 20,
		DrainTimeout:  10 * time.Second,
		MaxInFlight:   256,
		MaxRowErrors:  1000,
		GRPCMaxRecv:   16 << 20,
		MaxConns:      1024,
		GRPCIdle:      5 * time.Minute,
		GRPCPingMin:   10 * time.Second,
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

// envName and flagName are a key's env var and flag.
func envName(key string) string  { return envPrefix + strings.ToUpper(key) }
func flagName(key string) string { return "--" + strings.ReplaceAll(key, "_", "-") }

// flagHelp: -h was asked for and printed; exit 0.
var flagHelp = flag.ErrHelp

// printSchema: --print-config-schema was asked for; print configSchema and
// exit 0, whatever the other settings.
var printSchema = errors.New("print the config schema")

// loadConfig applies, lowest first: defaults, the TOML file (--config or
// POH_HOLDMETRICS_CONFIG), POH_HOLDMETRICS_* env vars, flags. Every error
// names the key it is about.
func loadConfig(args []string, getenv func(string) string) (config, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("holdmetricsd", flag.ContinueOnError)
	configPath := fs.String("config", getenv(envPrefix+"CONFIG"), "TOML config file (env "+envPrefix+"CONFIG)")
	schema := fs.Bool("print-config-schema", false, "print every setting (key, type, default, env var, flag, help) as a JSON Schema and exit")
	// Flags are parsed into strings first so precedence can be applied
	// after the file and env are read.
	set := map[string]*string{}
	fields := reflect.ValueOf(&cfg).Elem()
	for i := 0; i < fields.NumField(); i++ {
		f := fields.Type().Field(i)
		key := f.Tag.Get("key")
		name := strings.TrimPrefix(flagName(key), "--")
		def := fmt.Sprint(fields.Field(i).Interface())
		if fields.Field(i).Kind() == reflect.Bool {
			fs.BoolFunc(name, f.Tag.Get("help")+" (env "+envName(key)+")", func(s string) error {
				v := s
				set[key] = &v
				return nil
			})
			continue
		}
		fs.Func(name, f.Tag.Get("help")+" (default "+def+"; env "+envName(key)+")", func(s string) error {
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
	if *schema {
		return cfg, printSchema
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
		if v := getenv(envName(key)); v != "" {
			if err := setField(fields.Field(i), v); err != nil {
				return cfg, fmt.Errorf("env %s: %w", envName(key), err)
			}
		}
		if v, ok := set[key]; ok {
			if err := setField(fields.Field(i), *v); err != nil {
				return cfg, fmt.Errorf("flag %s: %w", flagName(key), err)
			}
		}
	}
	return cfg, cfg.validate()
}

var durationType = reflect.TypeOf(time.Duration(0))

// setField sets a field from an env var or a flag.
func setField(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
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

// A duration setting is a Go duration string ("5ms", "1h30m", "+1s") or a
// number of seconds: a TOML integer or float, or a numeric string ("3600",
// "0.25", "1e3") in a file, an env var or a flag. Spaces around it are
// ignored; negative durations are refused, and so is anything beyond
// time.Duration's range. The Python package's _config.parse_duration reads
// the same syntax; durationAccepted and durationRejected (printed in the
// schema) are the vectors both test.

// secondsSyntax is a plain decimal number (no hex, no underscores, no inf).
var secondsSyntax = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// durationSpace is what is trimmed around a duration (ASCII only, as in
// Python).
const durationSpace = " \t\n\r\f\v"

// maxDurationSeconds is time.Duration's largest value in seconds.
const maxDurationSeconds = "9223372036.854775807"

// parseDuration reads a duration setting: a string (from a file, an env var
// or a flag), or a TOML int64 or float64 (seconds).
func parseDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case int64:
		return secondsDuration(float64(x), strconv.FormatInt(x, 10))
	case float64:
		return secondsDuration(x, strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		s := strings.Trim(x, durationSpace)
		if secondsSyntax.MatchString(s) {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return 0, fmt.Errorf("%q is not a duration (e.g. 5ms, 1h, or seconds)", x)
			}
			return secondsDuration(f, strconv.Quote(x))
		}
		if s != "" && s[0] != '-' {
			if d, err := time.ParseDuration(s); err == nil {
				return d, nil
			}
		}
		return 0, fmt.Errorf("%q is not a duration (e.g. 5ms, 1h, or seconds)", x)
	}
	return 0, fmt.Errorf("%v is not a duration (e.g. 5ms, 1h, or seconds)", raw)
}

// secondsDuration converts seconds, rounded to the nearest nanosecond as
// their 9-decimal text (how the Python package passes a duration to the
// daemon: "%.9f"), so both sides agree to the nanosecond.
func secondsDuration(secs float64, shown string) (time.Duration, error) {
	if math.IsNaN(secs) || math.IsInf(secs, 0) || secs < 0 {
		return 0, fmt.Errorf("%s must be a finite duration >= 0", shown)
	}
	whole, frac, _ := strings.Cut(strconv.FormatFloat(secs, 'f', 9, 64), ".")
	sec, err := strconv.ParseInt(strings.TrimPrefix(whole, "-"), 10, 64) // "-0" for -0.0
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	if err != nil || sec > math.MaxInt64/int64(time.Second) || sec*int64(time.Second) > math.MaxInt64-nsec {
		return 0, fmt.Errorf("%s is out of range (at most %s seconds)", shown, maxDurationSeconds)
	}
	return time.Duration(sec*int64(time.Second) + nsec), nil
}

// durationAccepted and durationRejected pin the duration syntax: the
// schema prints them, and both this package's and the Python package's
// tests read every one.
var durationAccepted = []struct {
	Value       any   `json:"value"`
	Nanoseconds int64 `json:"nanoseconds"`
}{
	{"0", 0}, {"5ms", 5e6}, {"1h30m", 5400e9}, {"2m3.5s", 123.5e9}, {"1.5h", 5400e9}, {"+1s", 1e9},
	{"250us", 250e3}, {"250\u00b5s", 250e3}, {"250\u03bcs", 250e3}, {"100ns", 100}, {".5s", 5e8}, {"5.s", 5e9},
	{"3600", 3600e9}, {"1.5", 1.5e9}, {"1e3", 1000e9}, {"0.000000001", 1}, {" 2s\t", 2e9}, {"-0", 0},
	{"9223372036", 9223372036e9}, {int64(3600), 3600e9}, {int64(0), 0}, {0.25, 0.25e9}, {1e-9, 1},
}

var durationRejected = []any{
	"", " ", "+", "-", "s", "h", "1d", "1h 30m", "1hh", "-1s", "-0s", "-5", "nan", "inf", "1e400", "1_000", "0x10",
	"\u0661", "\u00a05s", "9223372037", "true", int64(-1), -0.5, 1e10, true,
}

// tomlView decodes TOML keys onto config fields by their `key` tag.
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
			if fields.Field(i).Type() == durationType {
				d, err := parseDuration(raw)
				if err != nil {
					return fmt.Errorf("key %s: %w", k, err)
				}
				fields.Field(i).SetInt(int64(d))
				continue
			}
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
	if err := c.validateStorage(); err != nil {
		return err
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
	case c.MaxInFlight <= 0:
		return fmt.Errorf("max_in_flight %d: must be > 0", c.MaxInFlight)
	case c.MaxRowErrors <= 0:
		return fmt.Errorf("max_row_errors %d: must be > 0", c.MaxRowErrors)
	case c.GRPCMaxRecv <= 0 || c.GRPCMaxRecv > 1<<30:
		return fmt.Errorf("grpc_max_recv_bytes %d: must be in (0, 1 GiB]", c.GRPCMaxRecv)
	case c.MaxConns <= 0:
		return fmt.Errorf("max_conns %d: must be > 0", c.MaxConns)
	case c.GRPCIdle <= 0:
		return fmt.Errorf("grpc_idle_timeout %v: must be > 0", c.GRPCIdle)
	case c.GRPCMaxAge < 0:
		return fmt.Errorf("grpc_max_conn_age %v: must be >= 0", c.GRPCMaxAge)
	case c.GRPCPingMin <= 0:
		return fmt.Errorf("grpc_keepalive_min_time %v: must be > 0", c.GRPCPingMin)
	}
	if _, err := c.campaignWindow(); err != nil {
		return err
	}
	return nil
}

// validateStorage checks store, store_lease_ttl and the audit keys.
func (c *config) validateStorage() error {
	switch {
	case c.Store != "" && !strings.HasPrefix(c.Store, "mongodb://") && !strings.HasPrefix(c.Store, "mongodb+srv://"):
		return fmt.Errorf("store %q: want empty (the embedded log in data_dir) or a mongodb:// URI", mongostore.Redact(c.Store))
	case c.InMemory && (c.Store != "" || c.AuditImmudb != ""):
		return errors.New("in_memory: keeps nothing, so store and audit_immudb must be empty")
	case c.StoreLeaseTTL < 300*time.Millisecond:
		return fmt.Errorf("store_lease_ttl %v: must be >= 300ms", c.StoreLeaseTTL)
	case c.AuditPrefix == "" || strings.ContainsAny(c.AuditPrefix, "/\x00"):
		return fmt.Errorf("audit_key_prefix %q: must be non-empty, without '/' or NUL", c.AuditPrefix)
	}
	if c.AuditImmudb != "" {
		if _, _, _, _, _, err := audit.ParseURL(c.AuditImmudb); err != nil {
			return fmt.Errorf("audit_immudb: %w", err)
		}
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

// configSchema is --print-config-schema's output: a JSON Schema of the
// TOML file (editors can validate a config with it), each key annotated
// with its type (x-type: string, bool, int or duration), its env var
// (x-env) and flag (x-flag). A duration's default is in seconds; a default
// that depends on the environment is x-default-computed instead of
// default. testdata/holdmetricsd-config.schema.json is this output.
func configSchema() ([]byte, error) {
	def := reflect.ValueOf(defaults())
	var props orderedObject
	for i := 0; i < def.NumField(); i++ {
		f, v := def.Type().Field(i), def.Field(i)
		key := f.Tag.Get("key")
		p := schemaKey{Description: f.Tag.Get("help"), Env: envName(key), Flag: flagName(key)}
		switch {
		case f.Type == durationType:
			p.Ref, p.Type, p.Default = "#/$defs/duration", "duration", time.Duration(v.Int()).Seconds()
		case v.Kind() == reflect.Bool:
			p.JSONType, p.Type, p.Default = "boolean", "bool", v.Bool()
		case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
			p.JSONType, p.Type, p.Default = "integer", "int", v.Int()
		case v.Kind() == reflect.String:
			p.JSONType, p.Type, p.Default = "string", "string", v.String()
		default:
			return nil, fmt.Errorf("config key %s: no schema type for %s", key, f.Type)
		}
		if c := f.Tag.Get("computed"); c != "" {
			p.Default, p.DefaultComputed = nil, c
		}
		props = append(props, member{key, p})
	}
	doc := struct {
		Schema               string        `json:"$schema"`
		Title                string        `json:"title"`
		Description          string        `json:"description"`
		Type                 string        `json:"type"`
		AdditionalProperties bool          `json:"additionalProperties"`
		Properties           orderedObject `json:"properties"`
		ConfigFile           struct {
			Env  string `json:"x-env"`
			Flag string `json:"x-flag"`
		} `json:"x-config-file"`
		Defs struct {
			Duration struct {
				Description string   `json:"description"`
				Type        []string `json:"type"`
				Minimum     int      `json:"minimum"`
				Accepted    any      `json:"x-accepted"`
				Rejected    any      `json:"x-rejected"`
			} `json:"duration"`
		} `json:"$defs"`
	}{
		Schema: "https://json-schema.org/draft/2020-12/schema",
		Title:  "holdmetricsd configuration",
		Description: "Every holdmetricsd setting: a key of the TOML file (--config), an env var (x-env) and a flag " +
			"(x-flag); a flag overrides an env var, which overrides the file, which overrides the default. " +
			"x-type is string, bool, int or duration; a duration default is in seconds. Generated by " +
			"`holdmetricsd --print-config-schema`; regenerate testdata/holdmetricsd-config.schema.json with " +
			"`go run ./cmd/holdmetricsd --print-config-schema > testdata/holdmetricsd-config.schema.json`.",
		Type:       "object",
		Properties: props,
	}
	doc.ConfigFile.Env, doc.ConfigFile.Flag = envPrefix+"CONFIG", "--config"
	d := &doc.Defs.Duration
	d.Description = "a Go duration string (\"5ms\", \"1h30m\") or a number of seconds (a TOML integer or float, " +
		"or a numeric string such as \"3600\" or \"0.25\"), at most " + maxDurationSeconds + " seconds; " +
		"negative durations are refused. x-accepted and x-rejected are examples (and the shared test vectors)."
	d.Type, d.Accepted, d.Rejected = []string{"string", "number"}, durationAccepted, durationRejected
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// schemaKey is one property of configSchema.
type schemaKey struct {
	Ref             string `json:"$ref,omitempty"`
	JSONType        string `json:"type,omitempty"`
	Type            string `json:"x-type"`
	Default         any    `json:"default,omitempty"`
	DefaultComputed string `json:"x-default-computed,omitempty"`
	Description     string `json:"description"`
	Env             string `json:"x-env"`
	Flag            string `json:"x-flag"`
}

// orderedObject is a JSON object that keeps its members in order (the
// config struct's).
type orderedObject []member

type member struct {
	key   string
	value any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(m.key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := enc.Encode(m.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
