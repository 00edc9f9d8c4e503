#!/bin/sh
# Entry point of the php-fpm image. Before php-fpm starts, listen.php checks
# FPM_LISTEN, FPM_REPORTS_LISTEN and FPM_ALLOWED_CLIENTS and works out the
# pools' listen.allowed_clients (php-fpm.conf reads it from
# FPM_LISTEN_ALLOWED_CLIENTS); a bad value stops here with exit status 2.
# Any other command (php, sh) runs as given.
set -eu
# request_terminate_timeout takes whole seconds with an optional s, m, h or
# d; compose passes the daemon's REQUEST_TIMEOUT, a Go duration, which php-fpm
# would refuse at start in forms such as 1m30s or 500ms.
terminate_timeout() {
  if ! printf '%s' "$2" | grep -Eq '^[0-9]+[smhd]?$'; then
    echo "php-fpm: $1 must be whole seconds with an optional s, m, h or d (php-fpm's request_terminate_timeout), got '$2': write 1m30s as 90s" >&2
    exit 2
  fi
}
case "${1:-}" in
  php-fpm|php-fpm*)
    terminate_timeout FPM_REQUEST_TERMINATE_TIMEOUT "${FPM_REQUEST_TERMINATE_TIMEOUT:-0}"
    terminate_timeout FPM_REPORTS_REQUEST_TERMINATE_TIMEOUT "${FPM_REPORTS_REQUEST_TERMINATE_TIMEOUT:-0}"
    FPM_LISTEN_ALLOWED_CLIENTS=$(php /usr/local/lib/fpmq/listen.php) || exit 2
    export FPM_LISTEN_ALLOWED_CLIENTS
    ;;
esac
exec "$@"
