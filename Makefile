# Every target runs with the project's pinned Node 24 (node_modules/.bin) first on PATH.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_MODULES := node_modules/.package-lock.json
LOCAL := $(CURDIR)/.local

.PHONY: all deps build typecheck structure test test-unit test-integration control-plane interop-tools cluster-up cluster-down install run cli demo demo-federation bench bench-compare bench-scale bench-proxy clean

all: build

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES)

build: deps
	tsc -p tsconfig.build.json

typecheck: deps
	tsc -p tsconfig.json --noEmit

## The structure stays as docs/architecture.md's layout says: folder layering, no import cycles, no I/O in the
## pure core, one API client (.dependency-cruiser.cjs), and no copied block of 6+ lines in src/ (.jscpd.json).
# dependency-cruiser parses with swc: it warns that TypeScript 7 has no JS API for it yet, which is expected.
structure: deps
	depcruise src --config .dependency-cruiser.cjs
	jscpd --config .jscpd.json src

## Build (once, cached) or locate kube-apiserver, etcd, kube-controller-manager and kubectl.
control-plane:
	@bash scripts/control-plane-build.sh >/dev/null

## Unit and integration tests; the node test runner's summary is printed last.
# Against an existing cluster (USE_EXISTING_CLUSTER=true) files share it, so they run one at a time.
TEST_CONCURRENCY ?= $(if $(filter true,$(USE_EXISTING_CLUSTER)),1,2)
# A test that hangs fails after 10 minutes instead of holding CI until its 90-minute limit.
TEST_FLAGS := --test-reporter=spec --test-timeout=600000

test: deps typecheck structure control-plane chart-tools interop-tools
	node --test $(TEST_FLAGS) --test-concurrency=$(TEST_CONCURRENCY) 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'

test-unit: deps
	node --test $(TEST_FLAGS) 'test/unit/**/*.test.ts'

test-integration: deps control-plane chart-tools interop-tools
	node --test $(TEST_FLAGS) --test-concurrency=$(TEST_CONCURRENCY) 'test/integration/**/*.test.ts'

cluster-up: deps control-plane
	node test/support/cluster-cli.ts up

cluster-down: deps
	node test/support/cluster-cli.ts down

## What `make run` needs in $KUBECONFIG (CRDs, namespace, admission policy, default TrustDomain),
## marked for adoption by a later `helm install` (HELM_RELEASE, POD_NAMESPACE; docs/install.md).
install: deps control-plane
	bash scripts/install.sh

## Run the operator on this host against $KUBECONFIG; flags in ARGS (`node src/main.ts --help` lists them),
## or AGENT_IDENTITY_* variables, e.g. AGENT_IDENTITY_HTTP_PORT=8081 make run.
run: deps
	node src/main.ts --log-format=pretty $(ARGS)

## The agent-identity CLI from this checkout: make cli ARGS='status -A'.
cli: deps
	@bin/agent-identity $(ARGS)

demo: deps control-plane
	node scripts/demo.ts

## Two local control planes federated both ways; an SDK agent in each calls the other (docs/federation.md).
demo-federation: deps control-plane
	node scripts/demo-federation.ts

## Throughput and latency, printed (not asserted): BENCH_IDENTITIES=200 by default.
## BENCH_MODE=compare runs bench-compare instead.
BENCH_MODE ?= sections
bench: deps control-plane
	node scripts/$(if $(filter compare,$(BENCH_MODE)),bench-compare,bench).ts

## Side by side, from outside the controller: N objects created at once → Ready p50/p90/p99, API
## writes/reads per issuance (the API server's apiserver_request_total), connections, CPU per 100,
## RSS after BENCH_IDLE_SECONDS idle, and a Ready-over-time SVG next to results.json in .local/bench/.
## BENCH_PRESETS=agent-identity-operator,cert-manager BENCH_RUNS=3 BENCH_N=300 (scripts/bench-compare.ts).
bench-compare: deps control-plane
	node scripts/bench-compare.ts

## The operator at N identities with policies and 5N unrelated Secrets/ConfigMaps (docs/performance.md):
## burst with CPU/RSS/heap checkpoints, idle, restart, root rotation, steady rate; table, results.json and
## scale.svg in .local/bench-scale/<time>/. Flags in ARGS, e.g. ARGS='--n=2000 --steady=50x20'.
bench-scale: deps control-plane
	node scripts/bench-scale.ts $(ARGS)

## The identity proxy side by side on loopback (docs/performance.md): direct, SDK mTLS, the proxies
## (dist/, as the sidecar runs them), ghostunnel (built once, scripts/ghostunnel.sh); 1 KB keep-alive
## requests open loop at 1k and 5k req/s and closed loop; then a root rotation under 1k req/s, and a 2 KB MCP
## tools/call with and without tool-level policy (scripts/bench-proxy-policy.ts). Printed,
## with results.txt, results.json and latency.svg in .local/bench-proxy/<time>/. BENCH_PROXY_RUNS=3
## BENCH_PROXY_SECONDS=5 BENCH_PROXY_CONCURRENCY=32 BENCH_PROXY_PATHS=direct,sdk,proxies,ghostunnel.
bench-proxy: build
	node scripts/bench-proxy.ts

clean:
	rm -rf dist .local

## ---- Helm chart, kustomize base and image (helm/, deploy/, Dockerfile) ----
.PHONY: helm chart chart-check chart-tools image

## Build (once, cached) or locate the pinned helm; prints its path.
helm:
	@bash scripts/helm.sh

## Copy crds/ into the chart and re-render deploy/ from the chart.
chart:
	bash scripts/chart-sync.sh

## Fail with a diff if the chart's CRDs or deploy/ drifted from crds/ and the chart.
chart-check:
	bash scripts/chart-sync.sh --check

## Build (once, cached) helm and promtool, which test/integration/chart.test.ts uses.
chart-tools:
	@bash scripts/helm.sh >/dev/null
	@bash scripts/chart-promtool.sh >/dev/null

## Build (once, cached) spire-server and the go-spiffe peer, which test/integration/spire-interop.test.ts uses.
interop-tools:
	@bash scripts/spire-server.sh >/dev/null
	@bash scripts/spiffe-peer.sh >/dev/null

## The operator image, with docker or podman, whichever answers `<engine> info`.
IMAGE ?= agent-identity-operator:$(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)
image:
	@engine=""; \
	for e in docker podman; do \
	  if command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; \
	done; \
	if [ -z "$$engine" ]; then \
	  echo "make image: no container engine available: neither 'docker info' nor 'podman info' succeeds here." >&2; \
	  echo "Install and start Docker or Podman, or build the Dockerfile on a machine that has one (docker build -t $(IMAGE) .)." >&2; \
	  exit 1; \
	fi; \
	echo "$$engine build -t $(IMAGE) ."; \
	$$engine build -t $(IMAGE) .
