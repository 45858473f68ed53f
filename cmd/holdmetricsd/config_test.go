package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
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
