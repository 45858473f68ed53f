#!/usr/bin/env bash
# Daemon benchmarks: bin/holdmetricsd and bin/holdmetrics-load as separate
# processes on loopback. Each load runs against an in-memory daemon and a
# durable one (fsync=interval) in the same invocation, so the ratio is
# meaningful; then restart time is measured for RESTART_EVENTS stored events
# (log replay after kill -9, and snapshot load after a clean stop).
# Results: build/bench-daemon.jsonl (raw) and build/bench-daemon.md (table).
#
#   DURATION=3s REPEAT=3 RESTART_EVENTS=1000000 scripts/bench-daemon.sh   (make bench: the short run)
#   DURATION=10s REPEAT=3 RESTART_EVENTS=10000000 scripts/bench-daemon.sh  (README figures)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3s}
REPEAT=${REPEAT:-3}
RESTART_EVENTS=${RESTART_EVENTS:-1000000}
mkdir -p build
work=$(mktemp -d /tmp/holdmetricsd-bench.XXXXXX)
out=build/bench-daemon.jsonl
: >"$out"
pid=
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
  cp "$work"/*.log build/ 2>/dev/null || true # the last daemon logs, for a failed run
  rm -rf "$work"
}
trap cleanup EXIT

start() { # start LOG ARGS...: starts the daemon, sets pid and addr
  local log=$1; shift
  "$daemon" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level info "$@" 2>"$log" &
  pid=$!
  for _ in $(seq 600); do grep -q '"holdmetricsd listening"' "$log" && break; sleep 0.05; done
  addr=$(sed -n 's/.*"holdmetricsd listening".*"grpc":"\([^"]*\)".*/\1/p' "$log")
  [[ -n $addr ]] || { cat "$log"; exit 1; }
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=; }

# Private copies: a concurrent `make build` must not swap a binary mid-run.
cp bin/holdmetricsd bin/holdmetrics-load "$work"/
daemon=$work/holdmetricsd
loadgen=$work/holdmetrics-load

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # daemon user+sys ticks

load() { # load STORE MODE ARGS...: one JSON line, plus the daemon's CPU seconds
  local store=$1 mode=$2 c0 c1; shift 2
  c0=$(cpu)
  res=$("$loadgen" -addr "$addr" -mode "$mode" -duration "$DURATION" "$@")
  c1=$(cpu)
  sed "s/^{/{\"store\":\"$store\",\"args\":\"$*\",\"server_cpu_s\":$(((c1 - c0) * 100 / tck))e-2,/" <<<"$res" | tee -a "$out"
}

# Each load gets a fresh daemon (and an empty data dir), memory then durable.
loads=("broadcast -streams 4" "batch -conc 2 -batch 10000" "unary -conc 50" "unary -conc 50 -rate 100")
for r in $(seq "$REPEAT"); do
  for l in "${loads[@]}"; do
    for store in memory interval; do
      if [[ $store == memory ]]; then start "$work/d.log" --in-memory
      else rm -rf "$work/data"; start "$work/d.log" --data-dir "$work/data" --fsync interval; fi
      # shellcheck disable=SC2086
      load $store $l
      stop
    done
  done
done

# Restart: fill, kill -9 (log replay only: snapshots off), restart; then a
# clean stop (writes a snapshot) and restart from the snapshot.
rm -rf "$work/data"
start "$work/d.log" --data-dir "$work/data" --snapshot-bytes -1
"$loadgen" -addr "$addr" -mode fill -events "$RESTART_EVENTS" -batch 10000 -conc 2 >/dev/null
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
logbytes=$(du -sb "$work/data" | cut -f1)
for phase in replay snapshot; do
  t0=$(date +%s%N)
  start "$work/r.log" --data-dir "$work/data"
  t1=$(date +%s%N)
  rec=$(grep '"store recovered"' "$work/r.log")
  ms=$(sed 's/.*"duration_ms":\([0-9]*\).*/\1/' <<<"$rec")
  ev=$(sed 's/.*"events_replayed":\([0-9]*\).*/\1/' <<<"$rec")
  echo "{\"mode\":\"restart\",\"phase\":\"$phase\",\"stored_events\":$RESTART_EVENTS,\"events_replayed\":$ev,\"recover_ms\":$ms,\"to_listening_ms\":$(((t1 - t0) / 1000000)),\"data_bytes\":$logbytes}" | tee -a "$out"
  stop # a clean stop: the next start loads the snapshot written here
  logbytes=$(du -sb "$work/data" | cut -f1)
done

python3 scripts/bench-daemon-report.py "$out" | tee build/bench-daemon.md
