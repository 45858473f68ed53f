#!/usr/bin/env bash
# Regenerates the profile-guided-optimisation (PGO) profile that the shipped
# binaries are built with: cmd/holdmetricsd/default.pgo (capi/default.pgo is a
# symlink to it, so the c-shared library gets the same one). Go picks up a
# main package's default.pgo by itself (go build -pgo=auto, the default).
#
# The profile is a CPU profile of the daemon, taken from its /debug/pprof
# endpoint while bin/holdmetrics-load drives it through gRPC (columnar batches,
# Broadcast streams, unary calls) and, beside the batches, a client asks for
# the top 100 over HTTP a few times a second. That is the ingest path (decode,
# validate, hash, record) the daemon, the C API and Python share, plus the
# ranking queries; it is not taken from the Go benchmarks it is measured with.
# Needs curl.
#
#   scripts/pgo.sh            (make pgo)   SECONDS_PER_LOAD=8 by default
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_LOAD:-8}
work=$(mktemp -d /tmp/holdmetricsd-pgo.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Build without any profile, so a stale one does not shape the new one.
go build -pgo=off -o "$work/holdmetricsd" ./cmd/holdmetricsd
go build -pgo=off -o "$work/holdmetrics-load" ./cmd/holdmetrics-load
"$work/holdmetricsd" --in-memory --debug-pprof --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 2>"$work/d.log" &
pid=$!
for _ in $(seq 600); do grep -q '"holdmetricsd listening"' "$work/d.log" && break; sleep 0.05; done
grpc=$(sed -n 's/.*"holdmetricsd listening".*"grpc":"\([^"]*\)".*/\1/p' "$work/d.log")
http=$(sed -n 's/.*"holdmetricsd listening".*"http":"\([^"]*\)".*/\1/p' "$work/d.log")
[[ -n $grpc && -n $http ]] || { cat "$work/d.log"; exit 1; }

n=0
for load in "batch -conc 2 -batch 10000" "broadcast -streams 4" "unary -conc 50"; do
  n=$((n + 1))
  go tool pprof -proto -seconds "$secs" "$http/debug/pprof/profile" >"$work/$n.prof" 2>/dev/null &
  prof=$!
  queries=
  if [[ $load == batch* ]]; then # rankings while the batches come in
    (while :; do curl -fsS -o /dev/null "$http/v1/top?n=100"; sleep 0.2; done) &
    queries=$!
  fi
  # shellcheck disable=SC2086 # $load is a list of flags
  "$work/holdmetrics-load" -addr "$grpc" -mode $load -duration "$((secs + 1))s" >/dev/null
  [[ -n $queries ]] && kill "$queries"
  wait "$prof"
done
kill -TERM "$pid"; wait "$pid" || true; pid=
go tool pprof -proto "$work"/*.prof >cmd/holdmetricsd/default.pgo 2>/dev/null
echo "wrote cmd/holdmetricsd/default.pgo ($(wc -c <cmd/holdmetricsd/default.pgo) bytes)"
