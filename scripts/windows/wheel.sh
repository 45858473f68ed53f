#!/usr/bin/env bash
# wheel.sh: the Windows wheel, cross-built here (mk/windows.mk `wheel-win`), into
# build/win/dist/poh_holdmetrics-<version>-cp311-abi3-win_amd64.whl: setup.py with
# POH_HOLDMETRICS_PLAT=win_amd64 (see there), from the sdist as `make wheel` does,
# with build/win/poh_holdmetrics.dll (make dll) and holdmetricsd.exe, both built first.
# Prints the wheel's path.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
GO=${GO:-go}
py=$("$ROOT/scripts/windows/cpython.sh" --fetch)
${MAKE:-make} --no-print-directory dll >&2
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 "$GO" build -trimpath -ldflags "-s -w" \
  -o "$WIN_BUILD/holdmetricsd.exe" ./cmd/holdmetricsd >&2
test -x .venv-build/bin/python || python3 -m venv .venv-build >&2
.venv-build/bin/pip install -q --disable-pip-version-check build >&2
rm -rf "$WIN_BUILD/dist"
POH_HOLDMETRICS_PLAT=win_amd64 POH_HOLDMETRICS_WIN_PYTHON="$py" POH_HOLDMETRICS_MINGW_CC="$MINGW_CC" \
  POH_HOLDMETRICS_LIB="$WIN_BUILD/poh_holdmetrics.dll" POH_HOLDMETRICSD_BIN="$WIN_BUILD/holdmetricsd.exe" \
  .venv-build/bin/python -m build -o "$WIN_BUILD/dist" . >"$WIN_BUILD/wheel.log" 2>&1 ||
  { tail -40 "$WIN_BUILD/wheel.log" >&2; exit 1; }
rm -f "$WIN_BUILD"/dist/*.tar.gz
whl=$(ls "$WIN_BUILD"/dist/*-win_amd64.whl)
echo "== Windows wheel $whl" >&2
echo "$whl"
