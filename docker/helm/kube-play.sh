#!/usr/bin/env bash
# The chart run live without a cluster (make helm-live-test): its manifests,
# rendered with fpmq/ci/kube-play-values.yaml, played by podman 5's `kube
# play` inside a Docker container, with the images of make images loaded
# into it. It checks that the broker and worker pods come up, that the
# daemon's readiness command follows `daemon pause` and php-fpm, that the
# caller's Job publishes jobs the worker runs ("Processing N"), and that a
# worker pod stopped while jobs run loses none and cuts none short: every
# job runs exactly once, before and after the pod starts again.
# Needs HELM (make helm-live-test builds it) and the Docker engine; run it
# under the shared lock where several users share the engine.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM=${HELM:?set HELM to a helm binary (make helm-live-test does)}
DEBIAN_IMAGE=${DEBIAN_IMAGE:-fpmq-local/debian:trixie}
image=fpmq-local/podman:trixie
ctr=fpmq-kube-play
storage=fpmq-kube-play-storage
# The names podman gives: pod NAME-pod per Deployment and Job, container POD-CONTAINER.
broker=live-fpmq-rabbitmq-pod-rabbitmq
pod=live-fpmq-commands-pod
jobs=20

say() { printf 'kube-play: %s\n' "$*"; }
fail() {
  printf 'kube-play: FAIL: %s\n' "$*" >&2
  docker exec "$ctr" podman ps -a >&2 2>/dev/null || true
  docker exec "$ctr" podman run --rm --network fpmq fpmq/php-fpm:dev \
    getent hosts live-fpmq-rabbitmq-pod rabbitmq "$broker" >&2 2>&1 || true
  for c in "$pod-daemon" "$pod-php-fpm" "$broker" live-fpmq-caller-pod-caller; do
    echo "--- $c" >&2
    docker exec "$ctr" podman logs --tail 15 "$c" >&2 2>&1 || true
  done
  exit 1
}
# pm runs a command in the podman container.
pm() { docker exec -e PODMAN_IGNORE_CGROUPSV1_WARNING=1 "$ctr" "$@"; }
# poll SECONDS CMD...: runs CMD once a second until it succeeds; fails after SECONDS.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}
ready() { pm podman exec "$pod-daemon" /daemon healthcheck ready; }
not_ready() { ! ready; }
# processed prints the worker's log, or nothing while there is none.
processed() { pm podman exec "$pod-php-fpm" cat /var/log/workers/workers.log 2>/dev/null || true; }
processed_at_least() { (($(processed | grep -c '^Processing') >= $1)); }

tmp=$(mktemp -d)
cleanup() {
  docker rm -f "$ctr" >/dev/null 2>&1 || true
  docker volume rm -f "$storage" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cleanup
mkdir -p "$tmp"

say "rendering the chart"
"$HELM" template live docker/helm/fpmq -f docker/helm/fpmq/ci/kube-play-values.yaml >"$tmp/all.yaml"
# The caller's Job apart: it is played once the worker runs.
awk -v dir="$tmp" '
  /^---/ { out = dir "/workers.yaml" }
  /^# Source: fpmq\/templates\/caller-job.yaml/ { out = dir "/caller.yaml" }
  { print > (out ? out : dir "/workers.yaml") }' "$tmp/all.yaml"
[[ -s $tmp/caller.yaml ]] || fail "no caller Job rendered"

say "building $image from $DEBIAN_IMAGE"
docker build -q -t "$image" --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" docker/helm/kube-play >/dev/null
docker run -d --name "$ctr" \
  --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
  --device /dev/fuse --device /dev/net/tun \
  -v "$storage:/var/lib/containers" -v "$tmp:/manifests:ro" "$image" >/dev/null
say "loading the images"
docker save fpmq/daemon:dev fpmq/php-fpm:dev fpmq/rabbitmq:dev fpmq/caller:dev | docker exec -i -e PODMAN_IGNORE_CGROUPSV1_WARNING=1 "$ctr" podman load -q >/dev/null
pm podman network create fpmq >/dev/null

say "playing the broker and the worker"
pm podman kube play --network fpmq /manifests/workers.yaml >/dev/null
poll 180 pm podman exec "$broker" /usr/local/bin/fpmq-healthcheck || fail "the broker is not up after 180 s"
poll 120 ready || fail "the worker is not ready after 120 s"
say "the broker and the worker are up; the daemon is ready"

pm podman exec "$pod-daemon" /daemon pause --reason kube-play >/dev/null
poll 20 not_ready || fail "still ready while paused"
pm podman exec "$pod-daemon" /daemon resume >/dev/null
poll 30 ready || fail "not ready again after resume"
say "readiness follows daemon pause and resume"

pm podman stop -t 30 "$pod-php-fpm" >/dev/null
poll 30 not_ready || fail "still ready without php-fpm"
pm podman start "$pod-php-fpm" >/dev/null
poll 60 ready || fail "not ready again once php-fpm is back"
say "readiness follows php-fpm"

say "the caller's Job publishes $jobs jobs of 2 s; the worker runs 5 at a time"
pm podman kube play --network fpmq /manifests/caller.yaml >/dev/null
poll 60 processed_at_least 6 || fail "the worker did not start 6 jobs within 60 s"
say "stopping the worker pod while jobs run"
start=$SECONDS
pm podman pod stop -t 80 "$pod" >/dev/null
say "stopped in $((SECONDS - start)) s"
pm podman cp "$pod-php-fpm:/var/log/workers/workers.log" /tmp/before.log
before=$(pm cat /tmp/before.log)
outcomes=$(pm podman logs "$pod-daemon" 2>&1 | grep -o '"outcome":"[a-z-]*"' | sort | uniq -c || true)
say "before the stop: $(grep -c '^Processing' <<<"$before") jobs started; the daemon's outcomes: $(tr -s ' \n' ' ' <<<"$outcomes")"
if grep -qvE '"outcome":"(succeeded|requeued)"' <<<"$outcomes"; then
  fail "a job did not succeed around the stop: $outcomes"
fi
succeeded=$(grep -o '[0-9]* "outcome":"succeeded"' <<<"$outcomes" | grep -o '^[0-9]*' || echo 0)
[[ $succeeded == "$(grep -c '^Processing' <<<"$before")" ]] || fail "$succeeded jobs succeeded but $(grep -c '^Processing' <<<"$before") started: some were cut short"

pm podman pod start "$pod" >/dev/null
all() {
  local log
  log=$(processed)
  # An emptyDir may outlive the stop (podman keeps the volume) or not.
  if [[ $log != "$before"* ]]; then log="$before"$'\n'"$log"; fi
  (($(grep -c '^Processing' <<<"$log") >= jobs)) && printf '%s\n' "$log" >"$tmp/all.log"
}
poll 120 all || fail "not every job ran within 120 s of the restart: $(processed | grep -c '^Processing') lines"
want=$(seq 1 "$jobs" | sed 's/^/Processing /')
got=$(grep '^Processing' "$tmp/all.log" | sort -t' ' -k2n)
[[ $got == "$want" ]] || fail "each job must run exactly once; the worker's log: $(tr '\n' ' ' <<<"$got")"
say "all $jobs jobs ran exactly once across the stop: none lost, none cut short and run again"
say "OK"
