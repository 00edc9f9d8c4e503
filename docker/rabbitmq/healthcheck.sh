#!/bin/bash
# The broker's health check: the AMQP listener, the management listener and
# the Prometheus listener each accept a TCP connection on the loopback. This
# is what `rabbitmq-diagnostics check_port_connectivity` checks, without
# starting an Erlang VM each time: that costs about 0.6 s of CPU per check,
# 12 % of a core at a 5 s interval, in bursts that show in job latency.
# RabbitMQ starts its listeners last in its boot, after the definitions.
#
# Ports: RABBITMQ_NODE_PORT (5672) and FPMQ_HEALTHCHECK_PORTS, the others
# (15672 15692). Exit status 0 when every port accepts, 1 otherwise, naming
# the first that did not.
set -u
for port in "${RABBITMQ_NODE_PORT:-5672}" ${FPMQ_HEALTHCHECK_PORTS:-15672 15692}; do
	# bash's /dev/tcp connects; the redirection fails if nothing accepts.
	if ! timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
		echo "rabbitmq: nothing accepts connections on 127.0.0.1:$port" >&2
		exit 1
	fi
done
