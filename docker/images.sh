#!/usr/bin/env bash
# Builds every image of the project.
#
# The Dockerfiles start from upstream images (rabbitmq, php fpm, golang,
# prometheus).
# When no registry can be reached, this script first builds Debian-based
# stand-ins for those (docker/local/), from a debootstrap base and Debian's
# packages, and points .env at them so that plain `docker compose` uses them.
#
#   IMAGES=auto (default) | upstream | local
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${IMAGES:-auto}
debian=fpmq-local/debian:bookworm
gover=$(go env GOVERSION 2>/dev/null || echo go)
local_rabbitmq=fpmq-local/rabbitmq:3
local_php=fpmq-local/php:8.2-fpm
local_prometheus=fpmq-local/prometheus:2
local_go=fpmq-local/golang:${gover#go}

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

build_local_bases() {
  if ! has_image "$debian"; then
    say "building the Debian base $debian with debootstrap"
    command -v debootstrap >/dev/null || { echo "images: debootstrap is needed (apt-get install debootstrap)" >&2; exit 1; }
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$root" -c . | docker import - "$debian" >/dev/null
    rm -rf "$root"
    trap - EXIT
  fi
  say "building $local_rabbitmq, $local_php and $local_prometheus from Debian's packages"
  docker build -q -t "$local_rabbitmq" --build-arg DEBIAN_IMAGE="$debian" \
    -f docker/local/debian-rabbitmq.Dockerfile docker/local >/dev/null
  docker build -q -t "$local_php" --build-arg DEBIAN_IMAGE="$debian" \
    -f docker/local/debian-php-fpm.Dockerfile docker/local >/dev/null
  docker build -q -t "$local_prometheus" --build-arg DEBIAN_IMAGE="$debian" \
    -f docker/local/debian-prometheus.Dockerfile docker/local >/dev/null
  if ! has_image "$local_go"; then
    say "building $local_go from the host's Go toolchain and CA bundle"
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp -a "$(go env GOROOT)" "$ctx/go"
    rm -rf "$ctx/go/pkg/obj" "$ctx/go/test"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
    docker build -q -t "$local_go" --build-arg DEBIAN_IMAGE="$debian" \
      -f docker/local/golang.Dockerfile "$ctx" >/dev/null
    rm -rf "$ctx"
    trap - EXIT
  fi
  set_env RABBITMQ_IMAGE "$local_rabbitmq"
  set_env PHP_IMAGE "$local_php"
  set_env PROMETHEUS_IMAGE "$local_prometheus"
  set_env GO_IMAGE "$local_go"
}

registry_reachable() {
  local image
  for image in "$(env_value RABBITMQ_IMAGE)" "$(env_value PHP_IMAGE)" "$(env_value GO_IMAGE)" "$(env_value PROMETHEUS_IMAGE)"; do
    # A .env from before PROMETHEUS_IMAGE existed: compose.yaml has its default.
    [ -n "$image" ] || continue
    case $image in fpmq-local/*) return 1 ;; esac
    has_image "$image" && continue
    timeout 300 docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

[ -f .env ] || { echo "images: .env is missing: run make .env" >&2; exit 1; }

case $mode in
  upstream)
    for k in RABBITMQ_IMAGE PHP_IMAGE GO_IMAGE PROMETHEUS_IMAGE; do
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
docker compose --profile tools --profile monitoring build
say "done: $(env_value RABBITMQ_IMAGE), $(env_value PHP_IMAGE), $(env_value GO_IMAGE), $(env_value PROMETHEUS_IMAGE)"
