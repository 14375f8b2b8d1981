# panther-exporter: build, run, test. `make run` and `make test` do everything
# a fresh machine needs beyond `.ci/run`'s installs.

SHELL := /bin/bash
# The build tags live in exporter/build-tags, read by this Makefile,
# nixos/package.nix and the tests. `remote` builds the Podman client side
# of go.podman.io/common/pkg/config (which the bindings' ssh connections
# load), as podman-remote is built; the exporter builds and vets without it.
TAGS := $(shell cat exporter/build-tags)
export GOFLAGS := -tags=$(TAGS)

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VPKG := github.com/prometheus/common/version
LDFLAGS := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
	-X $(VPKG).BuildUser=panther -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

BIN := bin/panther-exporter
ADDR ?= :9567
FUZZTIME ?= 20s
BENCHTIME ?= 1s

.PHONY: all build run test install fresh-check unit e2e lint bench fuzz docs dashboards rules stack clean nix-vendor-hash datadog-plan datadog-apply

all: build

# Static and stripped, as node_exporter ships: no libc to load, and a
# smaller binary is fewer file-backed pages in RSS.
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN) ./exporter/cmd/panther-exporter

run: build
	@addr='$(ADDR)'; case "$$addr" in :*) addr="localhost$$addr";; esac; \
	echo "panther-exporter: http://$$addr/metrics (landing page: http://$$addr/)"
	./$(BIN) --web.listen-address=$(ADDR) $(ARGS)

# Everything: the install step (Debian packages and Go tools, as root), unit
# tests, lint, then the real-stack end-to-end tests.
test: install
	$(MAKE) unit lint e2e

# What the tests need on a fresh Debian 12 machine; .ci/run uses the same.
install:
	bash .ci/install

# A new Debian 12 root (mmdebstrap), a clean clone, the install step and
# `make unit lint` inside it: proof that does not depend on a used machine.
fresh-check:
	bash .ci/fresh-check

unit:
	go test -count=1 ./...

# The end-to-end tests need root and the services .ci/run installs. Most run
# one at a time; those that mostly wait (the alert tests: minutes on
# Alertmanager's timers) run beside them (e2e/harness_test.go: serial,
# beside). -parallel
# gives every test its slot at once, so that they start at the beginning;
# the serial ones then queue on their own lock, not on a slot.
E2E_PARALLEL ?= 100
# gotestsum runs `go test -json` and ends with every failed test's whole
# output (=== Failed), so the tail of a CI log says why it failed even when
# many tests ran beside it; e2e.out keeps everything, the terminal the
# lines that matter.
e2e: build
	PANTHER_EXPORTER_BIN=$(CURDIR)/$(BIN) PATH="$$PATH:$$(go env GOPATH)/bin" gotestsum --format standard-verbose --jsonfile e2e.json -- \
	  -count=1 -tags=$(TAGS),e2e -timeout 40m -parallel $(E2E_PARALLEL) ./e2e/... 2>&1 | tee e2e.out | \
	  grep -E '^(=== (RUN|FAIL|Failed)|--- |PASS|FAIL|ok|panic|DONE)|_test.go'; exit $${PIPESTATUS[0]}

lint: build rules
	@unformatted=$$(gofmt -l exporter e2e dashboards rules nixos 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...
	go vet -tags=$(TAGS),e2e ./e2e/...
	PATH="$$PATH:$$(go env GOPATH)/bin" staticcheck ./...
	PATH="$$PATH:$$(go env GOPATH)/bin" staticcheck -tags=$(TAGS),e2e ./e2e/...
	@port=$$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'); \
	./$(BIN) --web.listen-address=127.0.0.1:$$port --log.level=warn & pid=$$!; \
	for i in $$(seq 50); do curl -sf http://127.0.0.1:$$port/metrics -o /tmp/panther-lint.prom && break; sleep 0.1; done; \
	kill $$pid; out=$$(promtool check metrics < /tmp/panther-lint.prom 2>&1); \
	if [ -n "$$out" ]; then echo "promtool check metrics:"; echo "$$out"; exit 1; fi; echo "promtool check metrics: clean"

bench:
	go test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) ./exporter/...

fuzz:
	@for pkg in $$(go list ./exporter/...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The Datadog monitors and dashboards into an organisation (docs/datadog.md):
# plan shows what apply would change. DATADOG_ARGS: key files and site, e.g.
#   DATADOG_ARGS="--api-key-file=/run/opnix/dd-api --app-key-file=/run/opnix/dd-app --site=datadoghq.eu"
DATADOG_NOTIFY ?= rules/datadog/notify.yaml
datadog-plan datadog-apply: datadog-%:
	go run ./rules/datadog/cmd/panther-datadog $* --notify-config=$(DATADOG_NOTIFY) $(DATADOG_ARGS)

# docs/metrics.md is generated from the metric catalog of the code.
docs:
	go test ./exporter/cmd/panther-exporter -run TestMetricsDoc -update

# vendorHash of nixos/package.nix: go mod vendor + nix-hash (needs nix-bin).
nix-vendor-hash:
	go test -count=1 ./nixos -run TestVendorHash -update-vendor-hash

# dashboards/grafana/*.json are generated from the Go code beside them.
dashboards:
	go test ./dashboards/grafana -run TestJSONUpToDate -update

# Prometheus rules (the optional ones too) and their unit tests, and the
# Alertmanager example.
rules:
	promtool check rules rules/prometheus/*.rules.yml rules/prometheus/optional/*.rules.yml
	promtool test rules rules/prometheus/tests/*_test.yml
	amtool check-config rules/alertmanager/alertmanager.yml

# Exporter + Prometheus (with rules/) + Alertmanager on this machine; Ctrl-C stops them.
stack: build
	BIN=$(BIN) rules/stack.sh

clean:
	rm -rf bin e2e.out
