#!/usr/bin/env bash
# Checks and unit-tests the alerting rules with promtool, in a Prometheus
# image (make alerts-test): promtool check rules alerts.yml, promtool test
# rules alerts_test.yml, and promtool check config prometheus.yml (which
# loads alerts.yml). Exits non-zero if any of them fails.
#
# The image is $PROMETHEUS_IMAGE, by default fpmq/prometheus:dev (what
# compose.yaml builds; make images). Any Prometheus 2.x image with
# /bin/promtool will do: compose's own PROMETHEUS_IMAGE from .env (the
# upstream image or its Debian stand-in, fpmq-local/prometheus:2) has it too.
# Nothing is pulled: the image must be there already.
set -euo pipefail

image=${PROMETHEUS_IMAGE:-fpmq/prometheus:dev}
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! docker image inspect "$image" >/dev/null 2>&1; then
  echo "test-rules.sh: image $image not found: run make images, or set PROMETHEUS_IMAGE to an image with /bin/promtool" >&2
  exit 1
fi

# The host's user, so that files only it can read are readable; no network,
# a read-only root and mount: promtool only reads, but for the test storage
# that `test rules` creates in /tmp.
promtool() {
  docker run --rm --network none --read-only --tmpfs /tmp --user "$(id -u):$(id -g)" \
    -v "$dir:/rules:ro" -w /rules --entrypoint /bin/promtool "$image" "$@"
}

status=0
promtool check rules alerts.yml || status=1
promtool test rules alerts_test.yml || status=1
promtool check config prometheus.yml || status=1

if [ "$status" -ne 0 ]; then
  echo "test-rules.sh: FAILED (image $image)" >&2
else
  echo "test-rules.sh: ok (image $image)"
fi
exit "$status"
