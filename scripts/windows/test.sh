#!/usr/bin/env bash
# test.sh: the Windows stage of `make test` (mk/windows.mk `test-windows`), under Wine.
#
#   1. make dll, and the C smoke program linked against it, run under Wine
#   2. GOOS=windows go vet ./..., then the Go tests of core, capi, store and server
#      under Wine (go_windows_amd64_exec)
#   3. the Python suite on a Windows CPython under Wine (python-suite.sh), when
#      scripts/windows/cpython.sh has one cached; otherwise a line says why not
#
# Without mingw-w64 or Wine it prints what is missing and passes on a developer's
# machine; in CI (CI set, as .ci/run does, which also installs both) it fails.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

if [ -n "$missing" ]; then
  case "${CI:-}" in
    "" | 0 | false)
      echo "!!!!!! test-windows SKIPPED: not installed: $missing !!!!!!"
      exit 0 ;;
    *)
      echo "test-windows: FAILED: not installed: $missing (.ci/run installs them)" >&2
      exit 1 ;;
  esac
fi

t0=$SECONDS
step() { echo "== windows ($((SECONDS - t0)) s): $*"; }
GO=${GO:-go}
goenv=(env CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC="$MINGW_CC" PATH="$ROOT/scripts/windows:$PATH")
# Go's os.RemoveAll needs a one-case patch under Wine 8 (see removeall-overlay.sh);
# vet takes the same overlay so that the two share one build of std.
overlay=$("$ROOT/scripts/windows/removeall-overlay.sh" "$WIN_BUILD/_overlay")

step "make dll"
${MAKE:-make} --no-print-directory dll build/win/smoke.exe
wine_prefix

step "C smoke under Wine"
"$WINE64" build/win/smoke.exe </dev/null

step "go vet ./... (GOOS=windows)"
"${goenv[@]}" "$GO" vet -overlay "$overlay" ./...

step "Go tests under Wine: core capi store server"
"${goenv[@]}" "$GO" test -count=1 -overlay "$overlay" ./core ./capi ./store ./server

step "Python suite on a Windows CPython under Wine"
"$ROOT/scripts/windows/python-suite.sh"
step "done"
