# A stand-in for the official php fpm image, built from Debian's packages for
# machines that cannot reach an image registry. It keeps the interface our
# Dockerfiles rely on: php-fpm and php on PATH, the www-data user. Like the
# official image it has no php.ini, so PHP runs on its built-in defaults
# (display_errors on, among others): tests see what users of that image see.
# It also has Debian's php-amqplib (with php${PHP_VERSION}-mbstring and
# phpseclib), which the fpmq PHP library in php/ loads from /usr/share/php
# when php/ has no vendor/ directory: workers can enqueue jobs of their own.
#
# PHP_VERSION must be the one the base's Debian release ships: 8.4 on trixie
# (the default), 8.2 on bookworm.
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE}
ARG PHP_VERSION=8.4
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      php${PHP_VERSION}-fpm php${PHP_VERSION}-cli php${PHP_VERSION}-mbstring php-amqplib \
 && rm -rf /var/lib/apt/lists/* /etc/php/${PHP_VERSION}/fpm/php.ini /etc/php/${PHP_VERSION}/cli/php.ini \
 && ln -s /usr/sbin/php-fpm${PHP_VERSION} /usr/local/sbin/php-fpm
STOPSIGNAL SIGQUIT
EXPOSE 9000
CMD ["php-fpm", "-F"]
