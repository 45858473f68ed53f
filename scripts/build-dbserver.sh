#!/usr/bin/env bash
# Builds a database server that the storage tests start on loopback, from its Go module
# source, once: the binary is cached under build/dbservers/ and its path printed on stdout
# (build output goes to stderr). Concurrent callers (test packages run in parallel) wait
# for one build.
#
#   scripts/build-dbserver.sh ferretdb   FerretDB v1.24.2 (MongoDB wire protocol, SQLite backend)
#   scripts/build-dbserver.sh immudb     immudb v1.10.0
#
# Neither builds with `go install pkg@version` (see shared facts): FerretDB's module zip
# lacks the generated build/version/version.txt (its binary panics at init without it), and
# immudb's go.mod has replace directives that only apply when building inside its own
# module. So the module is downloaded, copied out of the read-only module cache, and built
# in the copy. Exit status 1 with the reason on stderr when it cannot be built.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

case "${1:-}" in
  ferretdb) mod=github.com/FerretDB/FerretDB; ver=v1.24.2; pkg=./cmd/ferretdb ;;
  immudb)   mod=github.com/codenotary/immudb; ver=v1.10.0; pkg=./cmd/immudb ;;
  *) echo "usage: $0 ferretdb|immudb" >&2; exit 2 ;;
esac
name=$1
out=$root/build/dbservers/$name-$ver/$name
if [[ -x $out ]]; then echo "$out"; exit 0; fi

mkdir -p "$root/build/dbservers"
exec 9>"$root/build/dbservers/.$name.lock"
flock 9
if [[ -x $out ]]; then echo "$out"; exit 0; fi

t0=$SECONDS
echo "build-dbserver: building $name $ver from its module source (about 1-2 min cold)" >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/build-dbserver-$name.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Downloaded from a dir outside this repo, so that its go.mod is neither read nor changed.
dir=$(cd "$work" && GOFLAGS=-modcacherw go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z $dir || ! -d $dir ]]; then echo "build-dbserver: go mod download $mod@$ver failed" >&2; exit 1; fi
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
if [[ $name == ferretdb ]]; then
  echo "$ver" > "$work/src/build/version/version.txt"
fi
(cd "$work/src" && GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$work/$name" "$pkg") >&2
mkdir -p "$(dirname "$out")"
mv "$work/$name" "$out"
echo "build-dbserver: $out ($(du -h "$out" | cut -f1), $((SECONDS - t0)) s)" >&2
echo "$out"
