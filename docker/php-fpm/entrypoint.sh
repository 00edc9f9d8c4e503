#!/bin/sh
# Entry point of the php-fpm image. Before php-fpm starts, listen.php checks
# FPM_LISTEN, FPM_REPORTS_LISTEN and FPM_ALLOWED_CLIENTS and works out the
# pools' listen.allowed_clients (php-fpm.conf reads it from
# FPM_LISTEN_ALLOWED_CLIENTS); a bad value stops here with exit status 2.
# Any other command (php, sh) runs as given.
set -eu
case "${1:-}" in
  php-fpm|php-fpm*)
    FPM_LISTEN_ALLOWED_CLIENTS=$(php /usr/local/lib/fpmq/listen.php) || exit 2
    export FPM_LISTEN_ALLOWED_CLIENTS
    ;;
esac
exec "$@"
