# The verbs of this project. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
COMPOSE ?= docker compose
# Loads .env into the environment of a recipe line (image names for the tests).
WITH_ENV := set -a; [ -f .env ] && . ./.env; set +a;

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-18s %s\n", $$1, $$2}'

.env: ## create .env from .env.example with generated RabbitMQ passwords
	@umask 077; while IFS= read -r line; do \
	  case $$line in *_PASSWORD=) line="$$line$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" ;; esac; \
	  printf '%s\n' "$$line"; \
	done < .env.example > .env
	@echo "created .env with new RabbitMQ passwords"

.PHONY: images
images: .env ## build every image (Debian-based stand-ins when no registry is reachable)
	./docker/images.sh

.PHONY: up
up: images ## build and start the stack, waiting until it is healthy
	$(COMPOSE) up -d --wait

.PHONY: down
down: ## stop the stack and delete its volumes
	$(COMPOSE) --profile tools down -v --remove-orphans

.PHONY: logs
logs: ## follow the daemon's log
	$(COMPOSE) logs -f daemon

.PHONY: test
test: ## unit tests (no Docker needed)
	$(GO) test -race -count=1 ./services/...

.PHONY: integration-test
integration-test: .env ## end-to-end tests in containers (run make images first)
	$(WITH_ENV) TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=$${TESTCONTAINERS_HOST_OVERRIDE:-localhost} $(GO) test -tags integration -count=1 -timeout 20m -v ./integration/...

STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: monitoring-test
monitoring-test: .env ## the monitoring profile checked in headless Chromium (run make images first)
	$(WITH_ENV) TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=$${TESTCONTAINERS_HOST_OVERRIDE:-localhost} $(GO) test -tags integration -count=1 -timeout 20m -v -run TestMonitoring ./integration/

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l services integration)" || { gofmt -l services integration; exit 1; }
	$(GO) vet ./services/...
	$(GO) vet -tags integration ./integration/...
	$(STATICCHECK) ./services/...
	$(STATICCHECK) -tags integration ./integration/...

.PHONY: bench
bench: ## the system benchmark in containers (after make images; as root), then the micro-benchmarks
	TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=$${TESTCONTAINERS_HOST_OVERRIDE:-localhost} $(GO) run ./services/bench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./services/...

FUZZTIME ?= 20s
.PHONY: fuzz
fuzz: ## run every fuzz test for FUZZTIME (20s) each
	$(GO) test ./services/internal/fastcgi/ -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/internal/fastcgi/ -run '^$$' -fuzz '^FuzzReadParams$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/internal/job/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/caller/ -run '^$$' -fuzz '^FuzzParseInput$$' -fuzztime $(FUZZTIME)
