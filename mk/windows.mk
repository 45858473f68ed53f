# windows: the C API as a Windows DLL, cross-built with mingw-w64, and the
# Windows stage of `make test`, run under Wine (scripts/windows/test.sh).
#
#   make dll           build/win/poh_holdmetrics.dll, its GNU import library
#                      libpoh_holdmetrics.dll.a (link with -Lbuild/win -lpoh_holdmetrics) and
#                      poh_holdmetrics.def, from which MSVC's `lib /def:` makes a .lib
#   make vet-windows   GOOS=windows go vet ./... (cgo on, so capi is vetted too)
#   make test-windows  under Wine: the C smoke, the Go tests of core, capi, store and
#                      server, then the Python suite on a Windows CPython when one is
#                      cached (scripts/windows/cpython.sh). Without mingw or Wine it
#                      prints what is missing and passes; in CI (CI set) it fails.
#   make wheel-win     build/win/dist/*-win_amd64.whl (needs a Windows CPython for its
#                      headers: scripts/windows/cpython.sh fetches one)
#
# Debian: apt-get install gcc-mingw-w64-x86-64 wine64 (.ci/run does). What is built
# once and kept lies under build/win: the Wine prefix, the Windows CPython and the
# test-only workarounds that Wine 8 needs (docs/windows.md says which and why).

MINGW_CC  ?= x86_64-w64-mingw32-gcc
WIN_DIR   := build/win
WIN_DLL   := $(WIN_DIR)/poh_holdmetrics.dll
WIN_SMOKE := $(WIN_DIR)/smoke.exe
WIN_GOENV := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=$(MINGW_CC)
WIN_LINK  := -Wl,--out-implib,$(abspath $(WIN_DIR))/libpoh_holdmetrics.dll.a,--output-def,$(abspath $(WIN_DIR))/poh_holdmetrics.def

.PHONY: dll vet-windows test-windows wheel-win bench-windows

TEST_TARGETS += test-windows

dll: $(WIN_DLL)

# Always through go build, as the .so. The paths given to the linker must be absolute:
# it runs in a temporary directory.
$(WIN_DLL): FORCE
	@mkdir -p $(dir $@)
	$(WIN_GOENV) $(GO) build -buildmode=c-shared -trimpath -ldflags '-s -w -extldflags $(WIN_LINK)' -o $@ ./capi
	@rm -f $(WIN_DIR)/poh_holdmetrics.h  # cgo's generated header; the public one is capi/poh_holdmetrics.h

$(WIN_SMOKE): capi/smoke/smoke.c capi/poh_holdmetrics.h $(WIN_DLL)
	$(MINGW_CC) -std=c11 -Wall -Wextra -Werror -Icapi -o $@ capi/smoke/smoke.c -L$(WIN_DIR) -lpoh_holdmetrics

vet-windows:
	$(WIN_GOENV) $(GO) vet ./...

test-windows:
	@MAKE="$(MAKE)" GO="$(GO)" MINGW_CC="$(MINGW_CC)" scripts/windows/test.sh

wheel-win:
	@MAKE="$(MAKE)" GO="$(GO)" MINGW_CC="$(MINGW_CC)" scripts/windows/wheel.sh

## bench-windows: per-call cost of the C API, Linux and Windows under Wine (docs/windows.md)
bench-windows: $(CAPI_SO) $(WIN_DLL)
	@MINGW_CC="$(MINGW_CC)" scripts/windows/callbench.sh
