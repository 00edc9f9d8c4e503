# A stand-in for the official php fpm image, built from Debian's packages for
# machines that cannot reach an image registry. It keeps the interface our
# Dockerfiles rely on: php-fpm and php on PATH, the www-data user. Like the
# official image it has no php.ini, so PHP runs on its built-in defaults
# (display_errors on, among others): tests see what users of that image see.
# It also has Debian's php-amqplib (with php8.2-mbstring and phpseclib), which
# the fpmq PHP library in php/ loads from /usr/share/php when php/ has no
# vendor/ directory: workers can enqueue jobs of their own.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends php8.2-fpm php8.2-cli php8.2-mbstring php-amqplib \
 && rm -rf /var/lib/apt/lists/* /etc/php/8.2/fpm/php.ini /etc/php/8.2/cli/php.ini \
 && ln -s /usr/sbin/php-fpm8.2 /usr/local/sbin/php-fpm
STOPSIGNAL SIGQUIT
EXPOSE 9000
CMD ["php-fpm", "-F"]
