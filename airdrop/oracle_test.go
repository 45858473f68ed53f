package airdrop

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// oracle runs tests/npm/oracle.mjs (the reference libraries from npm) on req
// and decodes its answer into out. Without node or the installed packages the
// test is skipped, saying so, unless POH_REQUIRE_ORACLE is set (make test sets
// it after installing them), when it fails.
func oracle(t testing.TB, req any, out any) {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "tests", "npm"))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@openzeppelin", "merkle-tree"))
	}
	if err != nil {
		if os.Getenv("POH_REQUIRE_ORACLE") != "" {
			t.Fatalf("reference oracle unavailable (node, or npm ci --prefix tests/npm): %v", err)
		}
		t.Skipf("reference oracle unavailable (run make deps, or npm ci --prefix tests/npm): %v", err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "oracle.mjs"))
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(got, out); err != nil {
		t.Fatalf("oracle answer: %v\n%s", err, got)
	}
}
