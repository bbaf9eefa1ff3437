# callcontrol: make deps && make build; make run; make test
GO        ?= go
BUILD     ?= build
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
LDFLAGS   := -X github.com/callcontrol/callcontrol/internal/daemon.Version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(GOBIN)/staticcheck)
FUZZTIME  ?= 5s

.PHONY: all deps build run test lint unit e2e fuzz initd deb bench clean opensips

all: build

# Installs the packages and tools the tests need (Debian, as root).
deps:
	scripts/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BUILD)/ ./cmd/callcontrold ./cmd/callcontrol

# The daemon in the foreground with a working local configuration.
run: build
	@mkdir -p $(BUILD)/run $(BUILD)/state $(BUILD)/etc
	@test -f $(BUILD)/etc/config.ini || sed -e 's|@BUILD@|$(abspath $(BUILD))|g' scripts/run-config.ini > $(BUILD)/etc/config.ini
	@echo "config: $(BUILD)/etc/config.ini; try: $(BUILD)/callcontrol --runtime-dir $(BUILD)/run sessions"
	$(BUILD)/callcontrold --no-fork --config-dir $(BUILD)/etc --runtime-dir $(BUILD)/run

# Everything CI runs.
test: lint unit fuzz initd deb

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	shellcheck init.d/callcontrol scripts/*.sh test/*.sh

# OpenSIPS 3.4 and 3.6 for the end-to-end tests, built from ../shared/peers
# into a cache outside the clone (nothing to do when cached). Without the
# source archives the OpenSIPS tests skip, or fail when CI is set.
opensips:
	scripts/opensips.sh build || test $$? -eq 3

# Unit, integration (MariaDB, RADIUS) and end-to-end (Kamailio, OpenSIPS,
# sipp) tests.
unit: opensips
	$(GO) test -race -count=1 -timeout 15m ./...

# Every fuzz target, briefly.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

initd: build
	test/initd_test.sh $(abspath $(BUILD))

deb:
	test/deb_test.sh

bench: build
	$(GO) build -o $(BUILD)/ccbench ./cmd/ccbench
	$(BUILD)/ccbench -daemon $(BUILD)/callcontrold

clean:
	rm -rf $(BUILD)
