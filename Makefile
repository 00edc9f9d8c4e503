# The verbs of this project. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
COMPOSE ?= docker compose
# The integration tests and the benchmark are a Go module of their own.
IT := integration
# Checks what a target needs from Docker, naming the command that provides it.
PREFLIGHT := ./docker/preflight.sh
# Loads .env into the environment of a recipe line (image names for the tests).
WITH_ENV := set -a; [ -f .env ] && . ./.env; set +a;

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-26s %s\n", $$1, $$2}'

.PHONY: .env
.env: ## create .env from .env.example, or add to it, with a generated password for each one missing or empty
	@./docker/env.sh

.PHONY: deps
deps: ## as root on Debian/Ubuntu: install docker.io and debootstrap, start dockerd, build the compose plugin
	./docker/deps.sh

# STEP "LABEL" prints a heading for each stage of make check, with the time.
STEP = @printf '\n=== %s (%s)\n'

.PHONY: check
check: ## as root on a fresh Debian machine: provision, build every image, run every test (both RabbitMQ generations) and the quick start; what CI runs
	$(STEP) "Docker engine, debootstrap, compose plugin, chromium" "$$(date +%T)"
	./docker/deps.sh --tests
	$(STEP) "images" "$$(date +%T)"
	$(MAKE) --no-print-directory images
	$(STEP) "lint" "$$(date +%T)"
	$(MAKE) --no-print-directory lint
	$(STEP) "unit tests" "$$(date +%T)"
	$(MAKE) --no-print-directory test
	$(STEP) "the Laravel and Symfony bridges' unit tests, on the frameworks" "$$(date +%T)"
	$(MAKE) --no-print-directory php-bridges-test
	$(STEP) "fuzz, $(FUZZTIME) each" "$$(date +%T)"
	$(MAKE) --no-print-directory fuzz
	$(STEP) "alerting rules" "$$(date +%T)"
	$(MAKE) --no-print-directory alerts-test
	$(STEP) "the Helm chart, rendered and decoded strictly" "$$(date +%T)"
	$(MAKE) --no-print-directory helm-test
	$(STEP) "the Helm chart live, played by podman kube play in a container" "$$(date +%T)"
	$(MAKE) --no-print-directory helm-live-test
	$(STEP) "micro-benchmarks once each, so they keep compiling" "$$(date +%T)"
	$(GO) test -run '^$$' -bench . -benchtime=1x ./services/...
	$(STEP) "integration tests on RabbitMQ 4" "$$(date +%T)"
	FPMQ_REQUIRE_BROWSER=1 $(MAKE) --no-print-directory integration-test
	$(STEP) "integration tests on RabbitMQ 3" "$$(date +%T)"
	FPMQ_REQUIRE_BROWSER=1 $(MAKE) --no-print-directory integration-test-rabbitmq3
	$(STEP) "the quick start" "$$(date +%T)"
	$(MAKE) --no-print-directory smoke
	$(STEP) "all green" "$$(date +%T)"

.PHONY: smoke
smoke: ## the README's quick start end to end: make up, a job from the caller, its line in the worker's log, make down
	COMPOSE="$(COMPOSE)" ./integration/smoke.sh

.PHONY: images
images: .env ## build every image (Debian-based stand-ins when no registry is reachable)
	@$(PREFLIGHT) engine compose
	./docker/images.sh

.PHONY: up
up: images ## build and start the stack, waiting until it is healthy
	$(COMPOSE) up -d --wait

.PHONY: down
down: ## stop the stack, every profile's containers included, and delete its volumes and network
	$(COMPOSE) --profile '*' down -v --remove-orphans

.PHONY: rotate
rotate: ## after changing passwords in .env: recreate RabbitMQ, and the daemons if their own changed; nothing else
	COMPOSE="$(COMPOSE)" ./docker/rotate.sh

.PHONY: logs
logs: ## follow the daemons' logs (both routes)
	$(COMPOSE) logs -f daemon daemon-reports

.PHONY: test
test: ## unit tests of both Go modules and the PHP packages (no Docker needed)
	GORACE=atexit_sleep_ms=50 $(GO) test -race -count=1 ./...
	GORACE=atexit_sleep_ms=50 $(GO) -C $(IT) test -race -count=1 ./...
	$(MAKE) --no-print-directory php-test

# testcontainers-go: Ryuk's image cannot be pulled (the tests clean up
# themselves), and the engine's published ports are reached as localhost.
TESTCONTAINERS_ENV := TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=$${TESTCONTAINERS_HOST_OVERRIDE:-localhost}

.PHONY: integration-test
integration-test: .env ## end-to-end tests in containers (run make images first)
	@$(PREFLIGHT) engine compose base-images
	$(WITH_ENV) $(TESTCONTAINERS_ENV) $(GO) -C $(IT) test -tags integration -count=1 -timeout 45m -v ./...

# The older broker generation: RABBITMQ_IMAGE is set after .env is loaded,
# which would otherwise win. Left out: the tests of what does not talk to
# RabbitMQ differently by generation (the console and the dashboard in a
# browser, php-fpm's life cycle and scaling, the docs, the images'
# hardening, tracing), which RabbitMQ 4's run covers.
BROKER_AGNOSTIC := ^(TestConsole|TestConsoleTrace|TestMonitoring|TestPHPFPMLifecycle|TestPoolStopped|TestScale|TestObservability|TestDocs.*|TestComposeIsHardened|TestImagesRunAsNonRoot|TestTrac.*)$$
.PHONY: integration-test-rabbitmq3
integration-test-rabbitmq3: .env ## the end-to-end tests whose behaviour depends on the broker, against RabbitMQ 3 (RABBITMQ3_IMAGE; after make images)
	@$(PREFLIGHT) engine compose base-images rabbitmq3-image
	$(WITH_ENV) RABBITMQ_IMAGE=$${RABBITMQ3_IMAGE:-rabbitmq:3.13-management} $(TESTCONTAINERS_ENV) $(GO) -C $(IT) test -tags integration -count=1 -timeout 45m -v -skip '$(BROKER_AGNOSTIC)' ./...

STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: monitoring-test
monitoring-test: .env ## the monitoring profile checked in headless Chromium (run make images first)
	@$(PREFLIGHT) engine compose base-images
	$(WITH_ENV) $(TESTCONTAINERS_ENV) $(GO) -C $(IT) test -tags integration -count=1 -timeout 20m -v -run TestMonitoring .

.PHONY: lint
lint: ## gofmt, go vet, staticcheck and go mod tidy -diff in the three Go modules; phpcs (PSR-12) on php/, shellcheck on the shell scripts
	@test -z "$$(gofmt -l services $(IT) $(HELM_CHECK))" || { echo "gofmt -w these:"; gofmt -l services $(IT) $(HELM_CHECK); exit 1; }
	$(GO) vet ./...
	$(GO) -C $(IT) vet -tags integration ./...
	$(GO) -C $(HELM_CHECK) vet ./...
	$(STATICCHECK) ./...
	cd $(IT) && $(STATICCHECK) -tags integration ./...
	cd $(HELM_CHECK) && $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	$(GO) -C $(IT) mod tidy -diff
	$(GO) -C $(HELM_CHECK) mod tidy -diff
	$(MAKE) --no-print-directory php-lint shellcheck

# need checks that each command in $(1) is installed; if one is not, it
# names them and the command that provides them, as preflight.sh does for
# Docker.
need = @gone=; for c in $(1); do command -v $$c >/dev/null || gone="$$gone no $$c,"; done; \
	[ -z "$$gone" ] || { echo "make:$${gone%,}; run: sudo ./docker/deps.sh --tests" >&2; exit 1; }

PHPUNIT ?= phpunit
PHPCS ?= phpcs
SHELLCHECK ?= shellcheck
# Every shell script of the repository.
SHELL_SCRIPTS = $(shell git ls-files '*.sh') .ci/run

.PHONY: php-test
php-test: ## the PHPUnit tests of each PHP package in php/ and of the scripts php-fpm runs
	$(call need,php $(PHPUNIT))
	$(PHPUNIT) -c php/client/phpunit.xml.dist
	$(PHPUNIT) -c php/worker/phpunit.xml.dist
	$(PHPUNIT) -c php/phpunit.xml.dist

.PHONY: frameworks-image
frameworks-image: ## the php-frameworks image: Debian trixie's Laravel 10 and Symfony 6.4 on fpmq/php-fpm:dev, with the test applications (after make images)
	@$(PREFLIGHT) engine
	docker build -q -f integration/frameworks/Dockerfile --build-arg BASE=fpmq/php-fpm:dev -t fpmq/php-frameworks:dev . >/dev/null

.PHONY: php-bridges-test
php-bridges-test: frameworks-image ## the PHPUnit tests of the Laravel and Symfony bridges, on the real frameworks in the php-frameworks image
	for bridge in laravel symfony; do \
	  docker run --rm -v "$(CURDIR)/php:/src/php:ro" -w /src --entrypoint phpunit fpmq/php-frameworks:dev -c php/$$bridge/phpunit.xml.dist || exit 1; \
	done

.PHONY: php-lint
php-lint: ## PSR-12 in php/ and the framework test applications (phpcs), with no findings
	$(call need,$(PHPCS))
	$(PHPCS) --standard=PSR12 --extensions=php --ignore='*/vendor/*' php/ integration/frameworks/

.PHONY: shellcheck
shellcheck: ## shellcheck on every shell script, with no findings
	$(call need,$(SHELLCHECK))
	$(SHELLCHECK) $(SHELL_SCRIPTS)

# The README tables of the settings are generated from the same envconfig
# tags as -h: TestREADMEConfiguration fails when they differ, and rewrites
# them with FPMQ_UPDATE_DOCS=1.
.PHONY: docs
docs: ## regenerate the settings tables of the daemon's, the caller's and the console's READMEs from the code (what -h prints)
	FPMQ_UPDATE_DOCS=1 $(GO) test -count=1 -run TestREADMEConfiguration ./services/daemon/ ./services/caller/ ./services/console/

BENCH_OUT ?= $(CURDIR)/bench-results
.PHONY: bench
bench: ## the system benchmark in containers (after make images; as root), then the micro-benchmarks
	@$(PREFLIGHT) engine project-images
	$(TESTCONTAINERS_ENV) $(GO) -C $(IT) run ./bench -out $(BENCH_OUT) $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./services/...

.PHONY: bench-frameworks
bench-frameworks: frameworks-image ## the framework benchmark: no-op Laravel and Symfony jobs through fpmq against queue:work and messenger:consume (after make images; as root; FWBENCH_FLAGS)
	@$(PREFLIGHT) engine project-images
	$(TESTCONTAINERS_ENV) $(GO) -C $(IT) run ./fwbench -out $(BENCH_OUT) $(FWBENCH_FLAGS)

.PHONY: soak
soak: .env ## the soak: 100,000 jobs over 10 minutes on a RabbitMQ cluster while parts restart (after make images; as root; SOAK_* settings)
	@$(PREFLIGHT) engine base-images
	$(WITH_ENV) $(TESTCONTAINERS_ENV) $(GO) -C $(IT) run ./soak

.PHONY: alerts-test
alerts-test: ## the Prometheus alerting rules' unit tests (promtool, in the Prometheus image; after make images)
	@$(PREFLIGHT) engine
	$(WITH_ENV) ./docker/prometheus/test-rules.sh

# The Helm chart's checks are a Go module of their own (client-go and the
# Prometheus Operator's types stay out of go.mod). Helm itself is built
# from the Go module proxy once, into a cache kept between runs.
HELM_CHECK := docker/helm/check
HELM_VERSION ?= v4.3.2
HELM_DIR ?= $(HOME)/.cache/fpmq/helm-$(HELM_VERSION)
HELM ?= $(HELM_DIR)/helm

.PHONY: helm-bin
helm-bin:
	@command -v $(HELM) >/dev/null || { echo "building Helm $(HELM_VERSION) into $(HELM_DIR) (a few minutes, once)"; GOBIN=$(HELM_DIR) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION); }

.PHONY: helm-test
helm-test: helm-bin ## the Helm chart (docker/helm): helm lint --strict and helm template for each documented variation, every document decoded strictly against the Kubernetes, Prometheus Operator and KEDA types; builds Helm once
	FPMQ_HELM=$(HELM) $(GO) -C $(HELM_CHECK) test -count=1 -v ./...

.PHONY: helm-live-test
helm-live-test: helm-bin ## the Helm chart live: its manifests played by podman kube play in a container, jobs run, a worker pod stopped while jobs run (after make images; as root)
	@$(PREFLIGHT) engine project-images
	HELM=$(HELM) ./docker/helm/kube-play.sh

FUZZTIME ?= 20s
.PHONY: fuzz
fuzz: ## run every fuzz test for FUZZTIME (20s) each
	$(GO) test ./services/internal/fastcgi/ -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/internal/fastcgi/ -run '^$$' -fuzz '^FuzzReadParams$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/internal/phpform/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/caller/ -run '^$$' -fuzz '^FuzzParseInput$$' -fuzztime $(FUZZTIME)
