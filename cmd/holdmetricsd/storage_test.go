package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestStorageKeys(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{[]string{"--store", "mongodb://127.0.0.1:27017/hm"}, ""},
		{[]string{"--store", "mongodb+srv://cluster.example/hm"}, ""},
		{[]string{"--store", "postgres://x"}, "store"},
		{[]string{"--store", "mongodb://u:secret@h/db", "--in-memory"}, "in_memory"},
		{[]string{"--store-lease-ttl", "10ms"}, "store_lease_ttl"},
		{[]string{"--audit-immudb", "immudb://immudb:immudb@127.0.0.1:3322/defaultdb"}, ""},
		{[]string{"--audit-immudb", "http://127.0.0.1:3322"}, "audit_immudb"},
		{[]string{"--audit-immudb", "immudb://127.0.0.1:99999"}, "audit_immudb"},
		{[]string{"--audit-key-prefix", "a/b"}, "audit_key_prefix"},
	} {
		_, err := loadConfig(append([]string{"--data-dir", dir}, tc.args...), func(string) string { return "" })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%v: got %v, want an error about %s", tc.args, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%v: the error shows the password: %v", tc.args, err)
		}
	}
}

func TestVerifyAuditUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--data-dir", "d"}, // no audit
		{"--data-dir", "d", "--store", "mongodb://h/db", "--audit-immudb", "immudb://h"}, // both stores
	} {
		t.Setenv("POH_HOLDMETRICS_AUDIT_IMMUDB", "")
		if err := verifyAudit(args, &out); err == nil || !strings.Contains(err.Error(), "usage: holdmetricsd verify-audit") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
