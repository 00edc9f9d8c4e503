#!/usr/bin/env bash
# Provisions what the containers need on a Debian or Ubuntu machine, as root:
# Debian's docker.io (engine and client) and debootstrap (for the local base
# images, see images.sh), a running engine, and the compose v2 plugin, which
# Debian 12 lacks and which is built here from its Go module. Each step is
# skipped when its result is there already, so it is safe to run again.
#
#   deps.sh          what the stack needs (make deps)
#   deps.sh --tests  also what the tests need besides Docker: Debian's
#                    chromium, the browser the monitoring test drives
#                    (make check); PHP's CLI, phpunit, php-codesniffer,
#                    php-amqplib and shellcheck (make test, make lint)
#
#   COMPOSE_VERSION (v5.6.0)  the compose plugin to build
set -euo pipefail

compose_version=${COMPOSE_VERSION:-v5.6.0}
plugins=/usr/local/lib/docker/cli-plugins
dockerd_log=/var/log/dockerd.log

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: %s\n' "$*" >&2; exit 1; }
engine_answers() { docker info >/dev/null 2>&1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo make deps"
command -v apt-get >/dev/null || die "needs Debian or Ubuntu (apt-get); install Docker with the compose plugin and debootstrap yourself"

tests=no
case ${1-} in
  --tests) tests=yes ;;
  '') ;;
  *) die "usage: deps.sh [--tests]" ;;
esac

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ "$tests" = no ] || command -v chromium >/dev/null || missing+=(chromium)
if [ "$tests" = yes ]; then
  command -v php >/dev/null || missing+=(php-cli)
  command -v phpunit >/dev/null || missing+=(phpunit)
  command -v phpcs >/dev/null || missing+=(php-codesniffer)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  # The PHP client's library and the extensions PHPUnit and it load.
  [ -f /usr/share/php/PhpAmqpLib/autoload.php ] || missing+=(php-amqplib)
  { command -v php >/dev/null && php -m | grep -qx dom; } || missing+=(php-xml)
  { command -v php >/dev/null && php -m | grep -qx mbstring; } || missing+=(php-mbstring)
fi
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! engine_answers; then
  if pgrep -x dockerd >/dev/null; then
    say "dockerd runs but does not answer yet: waiting"
  else
    # A pid file left by an engine that did not stop cleanly keeps a new
    # one from starting.
    rm -f /var/run/docker.pid
    say "starting dockerd (log: $dockerd_log)"
    # In a session of its own, so that it outlives make and its terminal.
    setsid nohup dockerd >"$dockerd_log" 2>&1 </dev/null &
  fi
  for _ in $(seq 60); do engine_answers && break; sleep 1; done
  engine_answers || { tail -n 20 "$dockerd_log" >&2 || true; die "the engine does not answer after 60 s; see $dockerd_log"; }
fi
say "$(docker info --format 'engine {{.ServerVersion}}, storage {{.Driver}}')"

if ! docker compose version >/dev/null 2>&1; then
  command -v go >/dev/null || die "Go is needed to build the compose plugin: install Go 1.26"
  say "building the compose plugin $compose_version (about 2 minutes cold)"
  dir=$(cd /tmp && go mod download -json "github.com/docker/compose/v5@$compose_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || die "could not download github.com/docker/compose/v5@$compose_version"
  mkdir -p "$plugins"
  (cd "$dir" && go build -o "$plugins/docker-compose" ./cmd)
fi
say "$(docker compose version)"
