#!/usr/bin/env bash
# cpython.sh [--fetch]: prints the directory of a Windows CPython for the tests under
# Wine and for building the Windows wheel (its include/ and libs/python3.lib), or says
# on stderr why there is none and exits 1.
#
# The interpreter is python.org's own MSVC build (PCbuild, "[MSC v.1944 64 bit]") as
# Maven Central ships it: org.bytedeco:cpython:$CPY_VERSION:jar:windows-x86_64. It is
# taken from the local Maven repository (~/.m2), where --fetch puts it (mvn, 25 MB)
# when it is missing, and unpacked once into build/win/cpython-$CPY_VERSION with the
# fixes it needs. Run it under Wine with stdio on pipes (python-suite.sh does): with
# stdout on a regular file it dies in init_sys_streams ("Invalid handle"). The fixes:
#   - python3.dll, which it lacks (python.org's installer has it): a DLL of forwarders
#     to python314.dll, one per name in libs/python3.lib; the stable-ABI (abi3)
#     extension _lowlevel.pyd links against python3.dll, as it does on any Windows.
#   - no _wmi.pyd: under Wine 8, platform.* would abort in it (propsys.VariantToString
#     is not implemented), and platform falls back without it.
#   - a sitecustomize.py that hides _winapi.CopyFile2, which Wine 8 lacks (shutil.copy2
#     then aborts the process); shutil falls back to its older copy without it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
CPY_VERSION=${CPY_VERSION:-3.14.3-1.5.13}
artifact=org.bytedeco:cpython:$CPY_VERSION:jar:windows-x86_64
repo=${M2_REPO:-$HOME/.m2/repository}  # mvn's default local repository
jar=$repo/org/bytedeco/cpython/$CPY_VERSION/cpython-$CPY_VERSION-windows-x86_64.jar
out=$WIN_BUILD/cpython-$CPY_VERSION

# The Wine 8 workaround for shutil; real Windows has CopyFile2 (8 and later).
sitecustomize() {
  printf '%s\n' '"""Test CPython under Wine 8 only (scripts/windows/cpython.sh): no CopyFile2 there."""' \
    'import _winapi' 'if hasattr(_winapi, "CopyFile2"):' '    del _winapi.CopyFile2' >"$out/lib/sitecustomize.py"
}
if [ -f "$out/.poh-ready" ]; then sitecustomize; echo "$out"; exit 0; fi
if [ ! -f "$jar" ]; then
  if [ "${1:-}" != --fetch ]; then
    echo "no Windows CPython: $artifact is not in the local Maven repository ($jar); scripts/windows/cpython.sh --fetch gets it" >&2
    exit 1
  fi
  command -v mvn >/dev/null || { echo "no Windows CPython: fetching $artifact needs mvn" >&2; exit 1; }
  echo "== fetching $artifact (mvn, once)" >&2
  mvn -q -B dependency:get -Dartifact="$artifact" -Dtransitive=false >&2
fi

rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
python3 -m zipfile -e "$jar" "$out.tmp"
mv "$out.tmp/org/bytedeco/cpython/windows-x86_64" "$out"
rm -rf "$out.tmp" "$out/lib/_wmi.pyd"
sitecustomize
dll=$(ls "$out"/python3[0-9]*.dll | head -1)
dll=$(basename "$dll" .dll)
{
  echo "LIBRARY python3"
  echo "EXPORTS"
  "${MINGW_CC%gcc}nm" "$out/libs/python3.lib" 2>/dev/null |
    sed -n 's/^.* I __imp_\(.*\)$/\1/p' | sort -u | sed "s/.*/  & = $dll.&/"
} >"$WIN_BUILD/python3.def"
n=$(grep -c " = $dll\." "$WIN_BUILD/python3.def")
[ "$n" -gt 500 ] || { echo "cpython.sh: only $n names in python3.lib" >&2; exit 1; }
# No CRT: a DLL of forwarders only needs an entry point that says yes.
printf 'int __stdcall entry(void *h, unsigned long why, void *r) { (void)h; (void)why; (void)r; return 1; }\n' \
  >"$WIN_BUILD/python3_entry.c"
"$MINGW_CC" -O2 -s -shared -nostdlib -Wl,-e,entry -o "$out/python3.dll" "$WIN_BUILD/python3_entry.c" "$WIN_BUILD/python3.def"
echo "== Windows CPython $CPY_VERSION in $out (python3.dll: $n forwards to $dll.dll)" >&2
touch "$out/.poh-ready"
echo "$out"
