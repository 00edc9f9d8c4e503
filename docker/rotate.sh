#!/usr/bin/env bash
# Applies the passwords of .env to a running stack, touching only what must
# change. RabbitMQ writes its users from the environment when it starts, so
# it is recreated; the daemons are recreated only if their own settings changed
# (its password, ADMIN_TOKEN: compose compares them), and otherwise
# reconnects by itself. The
# caller and ops read .env at each run; php-fpm and Prometheus hold no
# password. It returns once the daemons are ready again.
#
#   COMPOSE="docker compose" rotate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
read -ra compose <<<"${COMPOSE:-docker compose}"
readonly ready_timeout=90 # seconds: a broker restart plus RECONNECT_MAX_DELAY (30 s)

if [ -z "$("${compose[@]}" ps -q rabbitmq)" ]; then
  echo "rotate: RabbitMQ is not running; make up starts the stack with the passwords of .env"
  exit 0
fi
"${compose[@]}" up -d --wait --no-deps rabbitmq
# Every route's daemon logs in as the daemon user (docker/README.md, "Routes").
daemons=(daemon daemon-reports)
"${compose[@]}" up -d --no-deps "${daemons[@]}"
# The console logs in as its own user, and sends ADMIN_TOKEN to the daemons.
if [ -n "$("${compose[@]}" ps -q console)" ]; then
  "${compose[@]}" up -d --no-deps console
fi
# Not up --wait: it fails at once on a daemon still unhealthy from the
# broker's restart, while it is reconnecting.
for ((i = 0; i < ready_timeout; i++)); do
  ready=0
  for d in "${daemons[@]}"; do
    if "${compose[@]}" exec -T "$d" /daemon healthcheck >/dev/null 2>&1; then
      ready=$((ready + 1))
    fi
  done
  if [ "$ready" -eq ${#daemons[@]} ]; then
    echo "rotate: RabbitMQ has the new passwords and the daemons are ready"
    exit 0
  fi
  sleep 1
done
echo "rotate: a daemon is not ready ${ready_timeout} s after RabbitMQ restarted; see docker compose logs ${daemons[*]}" >&2
exit 1
