#!/usr/bin/env bash
# The README's quick start, run as a newcomer runs it: make up, one job from
# the caller, its "Processing 42" line in the worker's log, three jobs from
# stdin, then everything removed again. Needs the images (make images).
set -euo pipefail
cd "$(dirname "$0")/.."

compose=${COMPOSE:-docker compose}
$compose --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
trap '$compose logs --no-color --tail=50 || true; $compose --profile tools down -v --remove-orphans >/dev/null 2>&1 || true' EXIT

# make up, as the quick start says; make images builds fpmq/rabbitmq:dev on
# RabbitMQ 4 again (a RabbitMQ 3 test pass leaves it built on 3).
make up
$compose exec -T rabbitmq rabbitmq-diagnostics -q server_version | grep '^4\.'
$compose run --rm caller 42
for _ in $(seq 60); do
  $compose exec -T php-fpm cat /var/log/workers/workers.log 2>/dev/null | grep -qx 'Processing 42' && break
  sleep 1
done
$compose exec -T php-fpm cat /var/log/workers/workers.log | grep -x 'Processing 42'
seq 1 3 | $compose run --rm -T caller -
$compose down -v
trap - EXIT
echo "smoke: the quick start works"
