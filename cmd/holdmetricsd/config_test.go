package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/server"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("fsync = \"always\"\nttl = \"1h\"\nlog_level = \"debug\"\nmax_batch = 7\nexpose = false\n"), 0o644)
	env := map[string]string{
		"POH_HOLDMETRICS_CONFIG":    file,
		"POH_HOLDMETRICS_TTL":       "2h",
		"POH_HOLDMETRICS_LOG_LEVEL": "warn",
	}
	cfg, err := loadConfig([]string{"--log-level", "error", "--data-dir", dir}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fsync != "always" || cfg.MaxBatch != 7 { // file over defaults
		t.Fatalf("file values: %+v", cfg)
	}
	if cfg.TTL != 2*time.Hour { // env over file
		t.Fatalf("ttl %v", cfg.TTL)
	}
	if cfg.LogLevel != "error" { // flag over env
		t.Fatalf("log level %s", cfg.LogLevel)
	}
	if cfg.GRPCAddr != "127.0.0.1:60051" || cfg.HTTPAddr != "127.0.0.1:9100" { // defaults
		t.Fatalf("addrs %s %s", cfg.GRPCAddr, cfg.HTTPAddr)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("grpc_adr = \"x\"\n"), 0o644)
	badType := filepath.Join(dir, "badtype.toml")
	os.WriteFile(badType, []byte("fsync_interval = \"soon\"\n"), 0o644)
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--fsync", "sometimes"}, nil, "fsync"},
		{[]string{"--grpc-addr", "0.0.0.0:1"}, nil, "grpc_addr"},
		{[]string{"--grpc-addr", "0.0.0.0:1", "--expose"}, nil, ""},
		{[]string{"--http-addr", "nonsense"}, nil, "http_addr"},
		{nil, map[string]string{"POH_HOLDMETRICS_TTL": "x"}, "POH_HOLDMETRICS_TTL"},
		{[]string{"--config", bad}, nil, "grpc_adr"},
		{[]string{"--config", badType}, nil, "fsync_interval"},
		{[]string{"--tls-cert", "c.pem"}, nil, "tls_key"},
		{[]string{"--auth-reads"}, nil, "auth_token_file"},
		{[]string{"stray"}, nil, "stray"},
		{[]string{"--window", "10,5"}, nil, "window \"10,5\""},
		{[]string{"--window", "10"}, nil, "must be t0,t1"},
		{nil, map[string]string{"POH_HOLDMETRICS_HISTORY": "maybe"}, "POH_HOLDMETRICS_HISTORY"},
	}
	for _, tt := range tests {
		get := func(k string) string { return tt.env[k] }
		_, err := loadConfig(append([]string{"--data-dir", dir}, tt.args...), get)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestConfigHistoryAndWindow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("history = true\nwindow = \"2024-01-01T00:00:00Z,2024-04-01T00:00:00Z\"\n"), 0o644)
	cfg, err := loadConfig([]string{"--config", file, "--data-dir", dir}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	w, err := cfg.campaignWindow()
	if !cfg.History || err != nil || w == nil || w.Start != 1704067200 || w.End != 1711929600 {
		t.Fatalf("from TOML: history %v window %v %v", cfg.History, w, err)
	}
	env := map[string]string{"POH_HOLDMETRICS_HISTORY": "true", "POH_HOLDMETRICS_WINDOW": "5,60"}
	cfg, err = loadConfig([]string{"--data-dir", dir}, func(k string) string { return env[k] })
	if w, _ := cfg.campaignWindow(); err != nil || !cfg.History || *w != (core.Window{Start: 5, End: 60}) {
		t.Fatalf("from env: %+v %v", cfg, err)
	}
	cfg, err = loadConfig([]string{"--data-dir", dir, "--history=false"}, func(k string) string { return env[k] })
	if err != nil || cfg.History {
		t.Fatalf("flag over env: history %v %v", cfg.History, err)
	}
	if cfg, _ := loadConfig([]string{"--data-dir", dir}, func(string) string { return "" }); cfg.History || cfg.Window != "" {
		t.Fatalf("defaults: history %v window %q", cfg.History, cfg.Window)
	}
}

// durationSources runs a duration value through every place a setting can come
// from; each result is the loaded ttl or the error.
func durationSources(t *testing.T, v any) map[string]func() (config, error) {
	t.Helper()
	dir := t.TempDir()
	none := func(string) string { return "" }
	out := map[string]func() (config, error){}
	toml := func(lit string) func() (config, error) {
		return func() (config, error) {
			file := filepath.Join(dir, "c.toml")
			if err := os.WriteFile(file, []byte("ttl = "+lit+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return loadConfig([]string{"--config", file, "--data-dir", dir}, none)
		}
	}
	switch x := v.(type) {
	case string:
		out["toml string"] = toml(strconv.QuoteToASCII(x))
		out["flag"] = func() (config, error) { return loadConfig([]string{"--data-dir", dir, "--ttl=" + x}, none) }
		if x != "" { // an empty env var is unset
			out["env"] = func() (config, error) {
				return loadConfig([]string{"--data-dir", dir}, func(k string) string {
					if k == "POH_HOLDMETRICS_TTL" {
						return x
					}
					return ""
				})
			}
		}
	case int64:
		out["toml integer"] = toml(strconv.FormatInt(x, 10))
	case float64:
		out["toml float"] = toml(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		out["toml bool"] = toml(strconv.FormatBool(x))
	default:
		t.Fatalf("example %v: unexpected type %T", v, v)
	}
	return out
}

// TestDurationSyntax runs the shared vectors (printed in the schema, read by
// python/tests/test_config.py too) through parseDuration and every source.
func TestDurationSyntax(t *testing.T) {
	for _, ex := range durationAccepted {
		want := time.Duration(ex.Nanoseconds)
		if d, err := parseDuration(ex.Value); err != nil || d != want {
			t.Errorf("parseDuration(%#v) = %v, %v; want %v", ex.Value, d, err, want)
		}
		for src, load := range durationSources(t, ex.Value) {
			if cfg, err := load(); err != nil || cfg.TTL != want {
				t.Errorf("ttl %#v from %s: %v, %v; want %v", ex.Value, src, cfg.TTL, err, want)
			}
		}
	}
	for _, v := range durationRejected {
		if d, err := parseDuration(v); err == nil {
			t.Errorf("parseDuration(%#v) = %v; want an error", v, d)
		}
		for src, load := range durationSources(t, v) {
			if _, err := load(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "ttl") {
				t.Errorf("ttl %#v from %s: error %v; want one naming the key", v, src, err)
			}
		}
	}
	// The messages, as the Python package words them.
	for v, want := range map[any]string{
		"soon":       `"soon" is not a duration (e.g. 5ms, 1h, or seconds)`,
		"-1s":        `"-1s" is not a duration (e.g. 5ms, 1h, or seconds)`,
		"-5":         `"-5" must be a finite duration >= 0`,
		int64(-1):    `-1 must be a finite duration >= 0`,
		"1e400":      `"1e400" must be a finite duration >= 0`,
		"9223372037": `"9223372037" is out of range (at most 9223372036.854775807 seconds)`,
		true:         `true is not a duration (e.g. 5ms, 1h, or seconds)`,
	} {
		if _, err := parseDuration(v); err == nil || err.Error() != want {
			t.Errorf("parseDuration(%#v): %v; want %s", v, err, want)
		}
	}
}

// TestConfigSchemaIsCommitted: the committed schema is what the binary
// prints, and every default in it reads back as the daemon's default.
func TestConfigSchemaIsCommitted(t *testing.T) {
	const committed = "../../testdata/holdmetricsd-config.schema.json"
	var out bytes.Buffer
	if err := realMain([]string{"--print-config-schema"}, &out); err != nil {
		t.Fatal(err)
	}
	const regenerate = "regenerate it from the repository root with\n\tgo run ./cmd/holdmetricsd --print-config-schema > testdata/holdmetricsd-config.schema.json"
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("%v; %s", err, regenerate)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("testdata/holdmetricsd-config.schema.json is not what holdmetricsd --print-config-schema prints; %s", regenerate)
	}
	var schema struct {
		Properties map[string]struct {
			Type            string `json:"x-type"`
			Default         any    `json:"default"`
			DefaultComputed string `json:"x-default-computed"`
			Env             string `json:"x-env"`
			Flag            string `json:"x-flag"`
		} `json:"properties"`
	}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.UseNumber() // defaults print as written
	if err := dec.Decode(&schema); err != nil {
		t.Fatal(err)
	}
	fields := reflect.TypeOf(config{})
	if len(schema.Properties) != fields.NumField() {
		t.Fatalf("schema has %d keys, config %d fields", len(schema.Properties), fields.NumField())
	}
	// Every default, passed as its flag in the schema's syntax, loads as
	// the built-in default: the schema's defaults are the daemon's.
	var args []string
	for i := 0; i < fields.NumField(); i++ {
		key := fields.Field(i).Tag.Get("key")
		p, ok := schema.Properties[key]
		switch {
		case !ok:
			t.Fatalf("schema lacks %s", key)
		case p.Env != "POH_HOLDMETRICS_"+strings.ToUpper(key) || p.Flag != "--"+strings.ReplaceAll(key, "_", "-"):
			t.Errorf("%s: env %s flag %s", key, p.Env, p.Flag)
		case (p.Default == nil) == (p.DefaultComputed == ""):
			t.Errorf("%s: needs exactly one of default (%v) and x-default-computed (%q)", key, p.Default, p.DefaultComputed)
		case p.Default != nil:
			args = append(args, fmt.Sprintf("%s=%v", p.Flag, p.Default))
		}
	}
	got, err := loadConfig(append(args, "--data-dir", "d"), func(string) string { return "" })
	def := defaults()
	def.DataDir = "d"
	if err != nil || got != def {
		t.Fatalf("schema defaults load as %+v, %v; want %+v", got, err, def)
	}
	if p := schema.Properties["data_dir"]; p.DefaultComputed == "" || p.Default != nil {
		t.Errorf("data_dir depends on the environment: %+v", p)
	}
}

// TestDaemonRPCsHaveAccess walks the daemon's own gRPC server: every method
// it registers has an entry in the auth table (server/auth.go).
func TestDaemonRPCsHaveAccess(t *testing.T) {
	agg, err := core.New(core.Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	svc := server.NewService(agg, core.Memory(agg), server.Config{})
	gs, _ := newGRPCServer(svc, nil, slog.New(slog.DiscardHandler), defaults())
	defer gs.Stop()
	n := 0
	for name, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			n++
			if _, ok := server.AccessOf("/" + name + "/" + m.Name); !ok {
				t.Errorf("/%s/%s has no entry in the auth table (server/auth.go)", name, m.Name)
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d methods registered: %v", n, gs.GetServiceInfo())
	}
}
