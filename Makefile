# Makefile - developer entry points for hashgate. CI only calls `make test` (.ci/run).
#
#   make deps     install Debian packages and Go tools (shell/deps.sh; idempotent)
#   make build    every daemon binary into bin/ (each go.work module except pkg that has
#                 a main.go: go build -o bin/<name> ./<name>)
#   make vet      per module: go vet ./... and GOWORK=off go build ./...
#   make test     deps, vet, go test -race over every module in one call, every fuzz
#                 target for TEST_FUZZTIME; PASS/FAIL
#   make fuzz     every Fuzz* target for FUZZTIME (default 30s)
#   make bench    every benchmark, with -benchmem
#   make verify   gofmt, shellcheck, go mod tidy -diff, pkg imports no daemon,
#                 go.work lists every module
#   make clean    remove bin/
#
# Modules come from `go work edit -json` (the Use list), so a new daemon needs no edit
# here. Variables: FUZZTIME, FUZZMINIMIZE, TEST_FUZZTIME, TEST_TIMEOUT, TESTFLAGS (extra go test flags).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

# Go and GOPATH/bin (btcd, nats-server) even from a bare CI environment. $(shell) does
# not see PATH changes made here (make < 4.4), hence $(GO).
GO := $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
GOPATH_BIN := $(firstword $(subst :, ,$(shell $(GO) env GOPATH 2>/dev/null)))/bin
export PATH := $(PATH):$(dir $(GO)):$(GOPATH_BIN)

FUZZTIME ?= 30s
# New inputs are minimised for at most this long (Go's default, 60s, stalls a
# short run on its first new input).
FUZZMINIMIZE ?= 2s
# make test runs every fuzz target for this many inputs after the tests: a count,
# not a duration, because go1.26's coordinator can report a spurious "context
# deadline exceeded" failure when a duration ends (golang/go#75804, fixed in 1.27).
TEST_FUZZTIME ?= 20000x
TEST_TIMEOUT ?= 25m
TESTFLAGS ?=

# Module directories from go.work, without the leading ./ (e.g. "jobmaster pkg").
MODULES := $(patsubst ./%,%,$(shell $(GO) work edit -json | sed -n 's/^.*"DiskPath": *"\(.*\)".*$$/\1/p'))
DAEMON_MODULES := $(filter-out pkg,$(MODULES))
# go package patterns over every module, relative to the repository root.
PATTERNS := $(addprefix ./,$(addsuffix /...,$(MODULES)))

# Version stamp (pkg/version.Commit), when the checkout has a commit.
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
PKG_MODULE := $(shell awk '$$1 == "module" {print $$2; exit}' pkg/go.mod 2>/dev/null)
LDFLAGS := $(if $(and $(COMMIT),$(PKG_MODULE)),-ldflags "-X $(PKG_MODULE)/version.Commit=$(COMMIT)")

# Daemons built without cgo: static binaries (mineragent runs on farm hosts with
# nothing installed; it also maps 1.5 MB less). shell/lib.sh has the same list.
STATIC_DAEMONS := mineragent

.PHONY: deps build vet test fuzz bench verify clean

deps:
	shell/deps.sh

build:
	@mkdir -p bin
	@for m in $(DAEMON_MODULES); do \
		name=$${m##*/}; \
		if [[ ! -f $$m/main.go ]]; then \
			echo "==> skip $$m: no main.go (not a daemon yet)"; continue; \
		fi; \
		cgo=1; if [[ " $(STATIC_DAEMONS) " == *" $$name "* ]]; then cgo=0; fi; \
		echo "==> CGO_ENABLED=$$cgo go build -o bin/$$name ./$$m"; \
		CGO_ENABLED=$$cgo go build $(LDFLAGS) -o "bin/$$name" "./$$m"; \
	done

vet:
	@failed=""; \
	for m in $(MODULES); do \
		echo "==> $$m: go vet ./..."; \
		(cd "$$m" && go vet ./...) || failed+=" $$m:vet"; \
		echo "==> $$m: GOWORK=off go build ./..."; \
		(cd "$$m" && GOWORK=off go build ./...) || failed+=" $$m:build"; \
	done; \
	if [[ -n $$failed ]]; then echo "vet: FAILED:$$failed"; exit 1; fi

# deps first (abort if it fails); then vet and one `go test` call over all modules
# (go.work), both always run so one CI log shows every problem; then a summary that is
# easy to find. Runs in this order also under `make -j`.
test:
	@$(MAKE) --no-print-directory deps
	@vet_rc=0; $(MAKE) --no-print-directory vet || vet_rc=$$?; \
	echo "==> go test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PATTERNS)"; \
	out=$$(mktemp); trap 'rm -f "$$out"' EXIT; rc=0; \
	go test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PATTERNS) 2>&1 | tee "$$out" || rc=$$?; \
	fuzz_rc=0; $(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME) || fuzz_rc=$$?; \
	ok=$$(grep -cE '^ok[[:space:]]' "$$out" || true); \
	notest=$$(grep -cE '^\?[[:space:]].*\[no test files\]' "$$out" || true); \
	echo; \
	echo "==================== make test summary ===================="; \
	if [[ $$vet_rc -eq 0 ]]; then echo "vet/build: ok"; else echo "vet/build: FAILED (see 'vet: FAILED' above)"; fi; \
	echo "go test: $$ok packages ok, $$notest without tests"; \
	if [[ $$fuzz_rc -eq 0 ]]; then echo "fuzz ($(TEST_FUZZTIME) per target): ok"; else echo "fuzz: FAILED (see '--- FAIL' above; the input is in the package's testdata/fuzz)"; fi; \
	if [[ $$rc -ne 0 ]]; then \
		echo "failed packages:"; grep -E '^FAIL[[:space:]]' "$$out" | sed 's/^/  /' || echo "  (none reported: build or setup failure, see above)"; \
		echo "failed tests:"; grep -E '^[[:space:]]*--- FAIL' "$$out" | sed 's/^[[:space:]]*/  /' || echo "  (none)"; \
	fi; \
	if [[ $$rc -eq 0 && $$vet_rc -eq 0 && $$fuzz_rc -eq 0 ]]; then echo "PASS"; else echo "FAIL (vet exit $$vet_rc, go test exit $$rc, fuzz exit $$fuzz_rc)"; fi; \
	echo "==========================================================="; \
	[[ $$rc -eq 0 && $$vet_rc -eq 0 && $$fuzz_rc -eq 0 ]]

fuzz:
	@pkgs=$$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PATTERNS)); \
	n=0; \
	for p in $$pkgs; do \
		for f in $$(go test -list 'Fuzz.*' "$$p" | grep -E '^Fuzz' || true); do \
			echo "==> $$p $$f (-fuzztime $(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) "$$p"; \
			n=$$((n + 1)); \
		done; \
	done; \
	echo "==> fuzz: $$n targets passed"

bench:
	go test -run '^$$' -bench . -benchmem $(TESTFLAGS) $(PATTERNS)

# Every check runs; the target fails at the end if any did.
verify:
	@failed=""; \
	echo "==> gofmt -l"; \
	files=$$(find . -name '*.go' -not -path './.*' -not -path '*/testdata/*' -not -path './bin/*'); \
	unformatted=$$(if [[ -n $$files ]]; then gofmt -l $$files; fi); \
	if [[ -n $$unformatted ]]; then echo "$$unformatted"; echo "gofmt: the files above need gofmt -w"; failed+=" gofmt"; fi; \
	echo "==> shellcheck shell/*.sh .ci/run"; \
	shellcheck -x shell/*.sh .ci/run || failed+=" shellcheck"; \
	for m in $(MODULES); do \
		echo "==> $$m: go mod tidy -diff"; \
		(cd "$$m" && go mod tidy -diff) || { echo "$$m: go.mod/go.sum are not tidy"; failed+=" $$m:tidy"; }; \
	done; \
	echo "==> pkg imports no daemon module"; \
	if deps=$$(cd pkg && go list -deps -test -f '{{.ImportPath}}' ./...); then \
		for m in $(DAEMON_MODULES); do \
			mod=$$(awk '$$1 == "module" {print $$2; exit}' "$$m/go.mod"); \
			if grep -E "^$${mod//./\\.}(/|$$)" <<<"$$deps"; then echo "pkg imports $$mod (above)"; failed+=" pkg-imports-$$m"; fi; \
		done; \
	else failed+=" pkg:go-list"; fi; \
	echo "==> go.work uses every module"; \
	found=$$(find . -name go.mod -not -path './.*' -not -path '*/testdata/*' -printf '%h\n' | sed 's|^\./||' | sort); \
	used=$$(printf '%s\n' $(MODULES) | sort); \
	if [[ "$$found" != "$$used" ]]; then \
		echo "go.work Use list differs from the modules on disk (< go.work, > disk):"; \
		diff <(echo "$$used") <(echo "$$found") || true; failed+=" go.work"; \
	fi; \
	if [[ -n $$failed ]]; then echo "verify: FAILED:$$failed"; exit 1; fi; \
	echo "verify: OK"

clean:
	rm -rf bin
