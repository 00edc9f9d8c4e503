#!/usr/bin/env bash
# Checks what a make target needs from Docker before it starts, and if
# something is missing, prints one line saying what and the command that
# provides it, instead of Docker's own error halfway through.
#
#   preflight.sh CHECK...   with CHECK among:
#     engine          a Docker engine answers
#     compose         the docker compose plugin is installed
#     base-images     the upstream (or local stand-in) images .env names exist
#     project-images  the images make images builds exist (fpmq/*:dev)
#     rabbitmq3-image the RabbitMQ 3 image .env names (RABBITMQ3_IMAGE) exists
set -uo pipefail
cd "$(dirname "$0")/.." || exit

missing=()
fixes=()
# lack WHAT FIX: records that WHAT is missing and that FIX provides it.
lack() {
  missing+=("$1")
  case " ${fixes[*]-} " in *" $2 "*) ;; *) fixes+=("$2") ;; esac
}
# join SEP WORD...: prints the words separated by SEP.
join() {
  local sep=$1 out=$2
  shift 2
  for word; do out+=$sep$word; done
  printf '%s' "$out"
}

engine=yes
for check in "$@"; do
  case $check in
    engine)
      docker info >/dev/null 2>&1 || { engine=no; lack "no Docker engine answers" "sudo make deps"; } ;;
    compose)
      docker compose version >/dev/null 2>&1 || lack "no docker compose plugin" "sudo make deps" ;;
    base-images|project-images|rabbitmq3-image)
      [ "$engine" = yes ] || continue
      env=.env
      [ -f "$env" ] || env=.env.example
      case $check in
        base-images)
          mapfile -t images < <(sed -n 's/^\(RABBITMQ\|PHP\|GO\|PROMETHEUS\)_IMAGE=//p' "$env") ;;
        rabbitmq3-image)
          # An .env from before RABBITMQ3_IMAGE: the Makefile's default.
          images=("$(sed -n 's/^RABBITMQ3_IMAGE=//p' "$env" | tail -n1)")
          [ -n "${images[0]}" ] || images=(rabbitmq:3.13-management) ;;
        *)
          images=(fpmq/rabbitmq:dev fpmq/php-fpm:dev fpmq/daemon:dev fpmq/caller:dev) ;;
      esac
      gone=()
      for image in "${images[@]}"; do
        [ -z "$image" ] || docker image inspect "$image" >/dev/null 2>&1 || gone+=("$image")
      done
      case ${#gone[@]} in
        0) ;;
        1) lack "no image ${gone[0]}" "make images" ;;
        *) lack "no images $(join ", " "${gone[@]}")" "make images" ;;
      esac ;;
    *)
      echo "preflight: unknown check '$check'" >&2; exit 2 ;;
  esac
done

if ((${#missing[@]})); then
  echo "make: $(join ", " "${missing[@]}"); run: $(join ", then " "${fixes[@]}")" >&2
  exit 1
fi
