package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHeaderMatchesExports: every //export has exactly one prototype in the
// hand-written header, every prototype has an export, and each prototype has
// a doc comment right above it. (Types are checked by the compiler: cgo
// builds each export against the header's prototype.)
func TestHeaderMatchesExports(t *testing.T) {
	exports := exportNames(t)
	hdr, err := os.ReadFile("poh_holdmetrics.h")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(hdr), "\n")
	protoRE := regexp.MustCompile(`^(?:int|int64_t)\s+(poh_\w+)\(`)
	var protos []string
	for i, l := range lines {
		m := protoRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		protos = append(protos, m[1])
		if i == 0 || strings.TrimSpace(lines[i-1]) != "*/" {
			t.Errorf("header: %s has no doc comment right above it", m[1])
		}
	}
	slices.Sort(protos)
	if !slices.Equal(exports, protos) {
		t.Errorf("header and //export list differ:\nexports: %v\nheader:  %v", exports, protos)
	}
	if c := slices.Compact(slices.Clone(protos)); len(c) != len(protos) {
		t.Errorf("header declares a function twice: %v", protos)
	}
}

// exportNames is every //export of the package's non-test files, sorted.
func exportNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	exportRE := regexp.MustCompile(`(?m)^//export (\w+)\s*$`)
	var exports []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exportRE.FindAllStringSubmatch(string(src), -1) {
			exports = append(exports, m[1])
		}
	}
	if len(exports) == 0 {
		t.Fatal("no //export found")
	}
	slices.Sort(exports)
	return exports
}

// TestNoTwins: one export per operation. No name ends in _window or 2 (a
// variant is a flag or a field of the one export's options), and the API
// stays small: about 20 exports (one per operation; the result kinds each have a typed reader).
func TestNoTwins(t *testing.T) {
	exports := exportNames(t)
	for _, name := range exports {
		if strings.HasSuffix(name, "_window") || strings.HasSuffix(name, "2") {
			t.Errorf("export %s is a twin of another: make the variant an option", name)
		}
	}
	if len(exports) > 24 {
		t.Errorf("%d exports, want at most 24: %v", len(exports), exports)
	}
}

// TestStatusCodesMirrored: every status code the header defines is mirrored
// in errors.go (the codes the exports return) and in the capitest driver
// (the codes the tests check), with distinct values.
func TestStatusCodesMirrored(t *testing.T) {
	hdr, err := os.ReadFile("poh_holdmetrics.h")
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^#define (POH_(?:OK|ERR_\w+)) (\d+)`).FindAllStringSubmatch(string(hdr), -1)
	if len(defs) < 9 {
		t.Fatalf("only %d status codes in the header", len(defs))
	}
	seen := map[string]string{}
	for _, file := range []string{"errors.go", "capitest/driver.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range defs {
			if !strings.Contains(string(src), "C."+d[1]+")") && !strings.Contains(string(src), "C."+d[1]+"\n") {
				t.Errorf("%s does not mirror %s", file, d[1])
			}
		}
	}
	for _, d := range defs {
		if other, dup := seen[d[2]]; dup {
			t.Errorf("%s and %s share the value %s", d[1], other, d[2])
		}
		seen[d[2]] = d[1]
	}
}
