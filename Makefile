# callcontrol: make deps && make build; make run; make test
GO        ?= go
BUILD     ?= build
# One version for both binaries: debian/changelog's, plus the commit when
# built from git (5.0.0+g1a2b3c4, "-dirty" with uncommitted changes).
VERSION   ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)$(shell git describe --always --dirty --exclude='*' 2>/dev/null | sed 's/^/+g/')
LDFLAGS   := -X github.com/callcontrol/callcontrol/internal/daemon.Version=$(VERSION) -X main.version=$(VERSION)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(GOBIN)/staticcheck)
FUZZTIME  ?= 50000x

.PHONY: all deps build run test lint unit repeat e2e fuzz initd completion systemd-unit deb deb-test bench clean opensips

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
test: lint unit repeat fuzz initd completion systemd-unit deb-test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	shellcheck init.d/callcontrol scripts/*.sh test/*.sh .ci/run debian/postinst debian/postrm

# OpenSIPS 3.4 and 3.6 for the end-to-end tests, built from ../shared/peers
# into a cache outside the clone (nothing to do when cached). Without the
# source archives the OpenSIPS tests skip, or fail when CI is set.
opensips:
	scripts/opensips.sh build || test $$? -eq 3

# Unit, integration (MariaDB, RADIUS) and end-to-end (Kamailio, OpenSIPS,
# sipp) tests.
unit: opensips
	$(GO) test -race -count=1 -timeout 15m ./...

# The internal packages' tests 15 times over, to catch a test that passes
# by the luck of timing. Without -race (unit has it) to stay within CI's
# time, -short (the 10,000-call recheck measurement), and without the
# tests of real peers, which unit runs once: MariaDB, chromium, radclient,
# promtool;
# nor the listing of 1,000,000 sessions (2 minutes under -race), which
# unit runs once.
# Most tests wait on sockets and timers, not the CPU: four packages at once.
REPEAT      ?= 15
REPEAT_SKIP := ^(TestAccountingThroughTheDaemon|TestWebPageInBrowser|TestPollerCheck|TestPollerMissingTables|TestPollerDatabaseDown|TestPollerRun|TestListenerRadclient|TestPollerStopWithoutSessionTime|TestPollerOneBadCallIDDoesNotStopTheRest|TestPollerDailyTablesYesterday|TestPollerAllTablesMissingIsAnError|TestPollerUnixTimeStopColumn|TestSessionsOfOneMillionCanBeListed|TestPageDoesNotShowAnUnconfirmedEndAsDone|TestPageKeepsItsLimitWhenFiltering|TestPageShowsMarkupFromTheNetworkAsText|TestEnginesChipCountsIdleEnginesUp|TestMetricsFollowConventions|TestRatingEngineDownAlertIgnoresIdleEngines|TestSampleRules|TestPageScriptTimesSayTheirZone|TestListenerStatusServerRadclient)$$
repeat:
	$(GO) test -short -count=$(REPEAT) -p 4 -timeout 15m -skip '$(REPEAT_SKIP)' ./internal/...

# Every fuzz target, briefly.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

initd: build
	test/initd_test.sh $(abspath $(BUILD))

# The bash completion offers every command and option the CLI takes.
completion: build
	test/completion_test.sh $(abspath $(BUILD))

# The systemd unit's directives and its systemd-analyze security score.
systemd-unit:
	test/systemd_unit_test.sh

# The Debian package, built into $(BUILD)/ and left there:
# apt install ./$(BUILD)/callcontrol_VERSION_ARCH.deb
deb:
	scripts/build-deb.sh $(BUILD)

# Installs the package just built, runs it under the init script, purges it
# (as root, on a machine where callcontrol is not installed).
deb-test: deb
	test/deb_test.sh $$(ls -t $(BUILD)/callcontrol_*.deb | head -1)

bench: build
	$(GO) build -o $(BUILD)/ccbench ./cmd/ccbench
	$(BUILD)/ccbench -daemon $(BUILD)/callcontrold

clean:
	rm -rf $(BUILD)
