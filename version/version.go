// Package version is the one version string of poh-holdmetrics: the C
// library reports it (poh_version), the daemon prints it, and the Python
// package's build reads the same file (version/VERSION).
package version

import (
	_ "embed"
	"strings"
)

//go:embed VERSION
var file string

// Version is the release, e.g. "0.2.0".
var Version = strings.TrimSpace(file)
