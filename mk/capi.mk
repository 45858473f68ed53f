# capi: the C API, built with -buildmode=c-shared into one .so, and its C smoke
# program (linked the way any C user links it).

CAPI_SO    := build/capi/libpoh_holdmetrics.so
CAPI_SMOKE := build/capi/smoke
CC         ?= cc

.PHONY: capi test-capi

TEST_TARGETS += test-capi

capi: $(CAPI_SO)

# The .so is always rebuilt through go build (its own cache makes that cheap),
# so a stale library is never tested.
$(CAPI_SO): FORCE
	@mkdir -p $(dir $@)
	$(GO) build -buildmode=c-shared -trimpath -ldflags '-s -w -extldflags -Wl,-soname,libpoh_holdmetrics.so' \
		-o $@ ./capi
	@rm -f $(basename $@).h  # cgo's generated header; the public one is capi/poh_holdmetrics.h

$(CAPI_SMOKE): capi/smoke/smoke.c capi/poh_holdmetrics.h $(CAPI_SO)
	$(CC) -std=c11 -Wall -Wextra -Werror -Icapi -o $@ capi/smoke/smoke.c -Lbuild/capi -lpoh_holdmetrics \
		-Wl,-rpath,'$$ORIGIN'

## test-capi: the C smoke program against the built .so (Go tests of capi run in test-go)
test-capi: $(CAPI_SMOKE)
	$(CAPI_SMOKE)

.PHONY: FORCE
FORCE:
