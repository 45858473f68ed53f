#!/usr/bin/env bash
# Go benchmarks, benchstat-style: every benchmark runs COUNT times and
# benchstat prints the median with its spread. Raw output is kept in
# build/bench-go.txt so two runs can be compared (go tool benchstat old new).
#
# The code is built the way the shipped library and daemon are: with the PGO
# profile cmd/holdmetricsd/default.pgo (see scripts/pgo.sh). PGO=off measures
# the plain build, as a Go program importing core without a profile gets it.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-6}
pgo=${PGO:-$PWD/cmd/holdmetricsd/default.pgo}
pkgs=${*:-./...}
mkdir -p build
echo "go test -bench (pgo=$pgo, count=$count) $pkgs"
go test -run '^$' -bench . -benchmem -count "$count" -pgo="$pgo" $pkgs | tee build/bench-go.txt >/dev/null
go tool benchstat build/bench-go.txt
