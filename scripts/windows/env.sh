# env.sh: sourced by the scripts here. The cross tools, and a Wine prefix of
# our own under build/win (kept between runs: creating one takes ~15 s).
#
#   MINGW_CC   x86_64-w64-mingw32-gcc (Debian: gcc-mingw-w64-x86-64)
#   WINE64     Wine's 64-bit loader (Debian: wine64, which installs no `wine64` on PATH)
#   missing    the names of what is not installed, for a skip line ("" when all is there)
#   wine_prefix  creates the prefix once (Windows 10, plus the ProcessPrng shim), then
#                starts one wineserver for the caller's whole run and stops it on exit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WIN_BUILD=$ROOT/build/win
MINGW_CC=${MINGW_CC:-x86_64-w64-mingw32-gcc}
if [ -z "${WINE64:-}" ]; then
  WINE64=$(command -v wine64 || true)
  [ -n "$WINE64" ] || { [ -x /usr/lib/wine/wine64 ] && WINE64=/usr/lib/wine/wine64; }
fi
WINESERVER=${WINESERVER:-$(dirname "${WINE64:-/usr/lib/wine/wine64}")/wineserver}
missing=""
command -v "$MINGW_CC" >/dev/null || missing="$missing $MINGW_CC (apt-get install gcc-mingw-w64-x86-64)"
[ -n "$WINE64" ] || missing="$missing wine64 (apt-get install wine64)"
missing=${missing# }

export WINE64 WINEPREFIX=$WIN_BUILD/wine WINEDEBUG=${WINEDEBUG:--all}
# No Mono or Gecko (their installers would want the network), no desktop window.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"

wine_prefix() {
  local stamp=$WINEPREFIX/.poh-ready shim=$ROOT/scripts/windows/bcryptprimitives_shim.c
  if [ ! -f "$stamp" ] || [ "$shim" -nt "$stamp" ]; then
    echo "== wine prefix $WINEPREFIX (once; kept under build/win)"
    "$WINE64" wineboot --init >/dev/null 2>&1 || true
    "$WINESERVER" -w
    "$WINE64" winecfg -v win10 >/dev/null 2>&1
    "$MINGW_CC" -O2 -s -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" "$shim" -lbcrypt
    "$WINESERVER" -w
    touch "$stamp"
  fi
  # One wineserver for the whole run (a fresh one per program costs seconds), with
  # no stdio of ours: a server that held the caller's stdout open would keep
  # `make test | ...` waiting after the run. Stopped when the calling script exits.
  "$WINESERVER" -p </dev/null >/dev/null 2>&1 || true  # (already up: fine)
  # The first program starts Wine's services (services.exe, winedevice.exe, ...), which
  # inherit its stdio: a no-op with stdio elsewhere, for the same reason.
  "$WINE64" cmd /c exit 0 </dev/null >/dev/null 2>&1 || true
  trap '"$WINESERVER" -k 2>/dev/null || true' EXIT
}
