#!/usr/bin/env bash
# callbench.sh [RUNS]: callbench.c on Linux (build/capi .so) and on Windows under Wine
# (build/win DLL), RUNS times each, interleaved (mk/windows.mk `bench-windows`;
# docs/windows.md has the figures). Each run prints its medians of 7 rounds.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
runs=${1:-5}
src=scripts/windows/callbench.c
cc -std=c11 -O2 -Wall -Wextra -Werror -Icapi -o build/capi/callbench "$src" -Lbuild/capi -lpoh_holdmetrics \
  -Wl,-rpath,'$ORIGIN'
"$MINGW_CC" -std=c11 -O2 -Wall -Wextra -Werror -Icapi -o "$WIN_BUILD/callbench.exe" "$src" \
  -L"$WIN_BUILD" -lpoh_holdmetrics
wine_prefix
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$runs"); do
  build/capi/callbench linux
  "$WINE64" "$WIN_BUILD/callbench.exe" wine </dev/null
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
