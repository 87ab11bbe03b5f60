# Every target runs with the project's pinned Node 24 (node_modules/.bin) first on PATH.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_MODULES := node_modules/.package-lock.json
LOCAL := $(CURDIR)/.local

.PHONY: all deps build typecheck test test-unit test-integration control-plane cluster-up cluster-down install run demo clean

all: build

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES)

build: deps
	tsc -p tsconfig.build.json

typecheck: deps
	tsc -p tsconfig.json --noEmit

## Build (once, cached) or locate kube-apiserver, etcd, kube-controller-manager and kubectl.
control-plane:
	@bash scripts/control-plane-build.sh >/dev/null

## Unit and integration tests; the node test runner's summary is printed last.
# Against an existing cluster (USE_EXISTING_CLUSTER=true) files share it, so they run one at a time.
TEST_CONCURRENCY ?= $(if $(filter true,$(USE_EXISTING_CLUSTER)),1,2)

test: deps typecheck control-plane
	node --test --test-reporter=spec --test-concurrency=$(TEST_CONCURRENCY) 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'

test-unit: deps
	node --test --test-reporter=spec 'test/unit/**/*.test.ts'

test-integration: deps control-plane
	node --test --test-reporter=spec --test-concurrency=$(TEST_CONCURRENCY) 'test/integration/**/*.test.ts'

cluster-up: deps control-plane
	node test/support/cluster-cli.ts up

cluster-down: deps
	node test/support/cluster-cli.ts down

## Apply the CRDs and a default TrustDomain to the cluster in $KUBECONFIG.
install: deps control-plane
	bash scripts/install.sh

## Run the operator on this host against $KUBECONFIG.
run: deps
	node src/main.ts --log-format=pretty --namespace=$${POD_NAMESPACE:-agent-identity-system} --http-port=$${HTTP_PORT:-8080}

demo: deps control-plane
	node scripts/demo.ts

clean:
	rm -rf dist .local
