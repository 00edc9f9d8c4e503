#!/usr/bin/env bash
# Builds every image of the project.
#
# The Dockerfiles start from upstream images (rabbitmq, php fpm, golang,
# prometheus); Jaeger (the tracing profile) is built from the Go module proxy
# on the golang one.
# When no registry can be reached, this script first builds Debian-based
# stand-ins for those (docker/local/), from debootstrap bases and Debian's
# packages, and points .env at them so that plain `docker compose` uses them.
#
#   IMAGES=auto (default) | upstream | local
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${IMAGES:-auto}
gover=$(go env GOVERSION 2>/dev/null || echo go)
# The stand-ins come from Debian trixie: RabbitMQ 4.0, PHP 8.4, Prometheus 2.
# A second RabbitMQ, 3.10 from bookworm, is for `make
# integration-test-rabbitmq3`, which runs the tests against the older broker
# generation (RABBITMQ3_IMAGE).
local_rabbitmq=fpmq-local/rabbitmq:4
local_rabbitmq3=fpmq-local/rabbitmq:3
local_php=fpmq-local/php:8.4-fpm
local_prometheus=fpmq-local/prometheus:2-trixie
local_go=fpmq-local/golang:${gover#go}-trixie

say() { printf 'images: %s\n' "$*"; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }

# set_env KEY VALUE: writes KEY=VALUE into .env, replacing an earlier value.
set_env() {
  if grep -q "^$1=" .env; then
    sed -i "s|^$1=.*|$1=$2|" .env
  else
    printf '%s=%s\n' "$1" "$2" >>.env
  fi
}

env_value() { sed -n "s/^$1=//p" .env | tail -n1; }

# debian_base RELEASE: prints the name of a minimal Debian RELEASE image,
# fpmq-local/debian:RELEASE, made with debootstrap unless Docker has it.
debian_base() {
  local image=fpmq-local/debian:$1 root
  if ! has_image "$image"; then
    say "building the Debian base $image with debootstrap" >&2
    command -v debootstrap >/dev/null || { echo "images: debootstrap is needed (apt-get install debootstrap)" >&2; exit 1; }
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase "$1" "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$root" -c . | docker import - "$image" >/dev/null
    rm -rf "$root"
    trap - EXIT
  fi
  printf '%s\n' "$image"
}

# build TAG DOCKERFILE BASE [--build-arg ...]: builds a stand-in from
# docker/local/ on BASE (quiet; Docker's cache makes a rebuild take seconds).
build() {
  local tag=$1 dockerfile=$2 base=$3
  shift 3
  docker build -q -t "$tag" --build-arg DEBIAN_IMAGE="$base" "$@" \
    -f "docker/local/$dockerfile" docker/local >/dev/null
}

build_local_bases() {
  local trixie bookworm
  trixie=$(debian_base trixie)
  bookworm=$(debian_base bookworm)
  say "building $local_rabbitmq, $local_php and $local_prometheus (trixie) and $local_rabbitmq3 (bookworm) from Debian's packages"
  build "$local_rabbitmq" debian-rabbitmq.Dockerfile "$trixie"
  build "$local_rabbitmq3" debian-rabbitmq.Dockerfile "$bookworm"
  build "$local_php" debian-php-fpm.Dockerfile "$trixie" --build-arg PHP_VERSION=8.4
  build "$local_prometheus" debian-prometheus.Dockerfile "$trixie"
  if ! has_image "$local_go"; then
    say "building $local_go from the host's Go toolchain and CA bundle"
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp -a "$(go env GOROOT)" "$ctx/go"
    rm -rf "$ctx/go/pkg/obj" "$ctx/go/test"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
    docker build -q -t "$local_go" --build-arg DEBIAN_IMAGE="$trixie" \
      -f docker/local/golang.Dockerfile "$ctx" >/dev/null
    rm -rf "$ctx"
    trap - EXIT
  fi
  set_env RABBITMQ_IMAGE "$local_rabbitmq"
  set_env RABBITMQ3_IMAGE "$local_rabbitmq3"
  set_env PHP_IMAGE "$local_php"
  set_env PROMETHEUS_IMAGE "$local_prometheus"
  set_env GO_IMAGE "$local_go"
}

registry_reachable() {
  local image
  for image in "$(env_value RABBITMQ_IMAGE)" "$(env_value RABBITMQ3_IMAGE)" "$(env_value PHP_IMAGE)" "$(env_value GO_IMAGE)" "$(env_value PROMETHEUS_IMAGE)"; do
    # A .env from before PROMETHEUS_IMAGE or RABBITMQ3_IMAGE existed:
    # compose.yaml and the Makefile have their defaults.
    [ -n "$image" ] || continue
    case $image in fpmq-local/*) return 1 ;; esac
    has_image "$image" && continue
    timeout 300 docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

[ -f .env ] || { echo "images: .env is missing: run make .env" >&2; exit 1; }

case $mode in
  upstream)
    for k in RABBITMQ_IMAGE RABBITMQ3_IMAGE PHP_IMAGE GO_IMAGE PROMETHEUS_IMAGE; do
      set_env "$k" "$(sed -n "s/^$k=//p" .env.example)"
    done
    say "using upstream images" ;;
  local)
    build_local_bases ;;
  auto)
    if [[ $(env_value RABBITMQ_IMAGE) != fpmq-local/* ]] && registry_reachable; then
      say "registry reachable: using upstream images"
    else
      say "no registry (or local images chosen before): using Debian-based stand-ins"
      build_local_bases
    fi ;;
  *) echo "images: IMAGES must be auto, upstream or local, got '$mode'" >&2; exit 2 ;;
esac

say "building the project's images with docker compose"
# The daemon, caller and console images share one Go build stage. Built
# for the daemon first, it is in the cache for the other two: compose
# builds in parallel, and each image would compile it again.
docker compose build daemon
docker compose --profile tools --profile monitoring --profile tracing build
say "done: $(env_value RABBITMQ_IMAGE), $(env_value RABBITMQ3_IMAGE), $(env_value PHP_IMAGE), $(env_value GO_IMAGE), $(env_value PROMETHEUS_IMAGE)"
