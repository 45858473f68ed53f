#!/usr/bin/env bash
# Go benchmarks, benchstat-style: every benchmark runs COUNT times and
# benchstat prints the median with its spread. Raw output is kept in
# build/bench-go.txt so two runs can be compared (go tool benchstat old new).
set -euo pipefail
count=${COUNT:-6}
pkgs=${*:-./...}
mkdir -p build
go test -run '^$' -bench . -benchmem -count "$count" $pkgs | tee build/bench-go.txt >/dev/null
go tool benchstat build/bench-go.txt
