# A stand-in for the official rabbitmq image, built from Debian's packages for
# machines that cannot reach an image registry. It keeps the interface our
# Dockerfiles rely on: rabbitmq-server and rabbitmq-diagnostics on PATH, data in
# /var/lib/rabbitmq, config in /etc/rabbitmq, RABBITMQ_DEFAULT_USER/PASS honoured.
# The broker's generation follows the base's Debian release: RabbitMQ 4.0 on
# trixie (the default), 3.10 on bookworm.
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/rabbitmq/conf.d \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
# Debian's /usr/sbin wrappers send the log to files and keep a shell as
# process 1, which ignores SIGTERM. Run RabbitMQ's own scripts instead, as the
# official image does, logging to stdout.
ENV PATH=/usr/lib/rabbitmq/bin:$PATH \
    RABBITMQ_LOGS=-
WORKDIR /var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
