#!/usr/bin/env bash
# removeall-overlay.sh OUTDIR: writes OUTDIR/overlay.json, a `go test -overlay`
# for test runs under Wine 8 only, and prints its path.
# OUTDIR must be one that `go ... ./...` skips (a name starting with "_"): the
# copy is Go source.
#
# Why: os.RemoveAll (so every t.TempDir cleanup) fails under Wine 8 with
# "Invalid function". Go deletes with FileDispositionInformationEx, which Wine
# answers with STATUS_NOT_IMPLEMENTED, a status Go does not fall back on (it
# does on STATUS_NOT_SUPPORTED and two others). The overlay adds that one case
# to a copy of the toolchain's internal/syscall/windows/at_windows.go. Real
# Windows 10 and later implement the call; nothing built for users uses this.
set -euo pipefail
out=$1
src=$(go env GOROOT)/src/internal/syscall/windows/at_windows.go
mkdir -p "$out"
sed "s/^\(\t*\)STATUS_NOT_SUPPORTED: /\1STATUS_NOT_SUPPORTED, NTStatus(0xC0000002): /" \
  "$src" >"$out/at_windows.go.tmp"
if cmp -s "$src" "$out/at_windows.go.tmp"; then
  echo "removeall-overlay.sh: the STATUS_NOT_SUPPORTED case is not in $src any more; update this script" >&2
  exit 1
fi
# Rewrite only on a change, so the build cache keyed on it stays warm.
cmp -s "$out/at_windows.go.tmp" "$out/at_windows.go" 2>/dev/null || mv "$out/at_windows.go.tmp" "$out/at_windows.go"
rm -f "$out/at_windows.go.tmp"
printf '{"Replace": {"%s": "%s"}}\n' "$src" "$out/at_windows.go" >"$out/overlay.json"
echo "$out/overlay.json"
