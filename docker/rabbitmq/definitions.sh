#!/bin/sh
# Writes RabbitMQ's definitions (vhost, users, permissions) from the
# environment, then starts the broker with them. Passwords come from the
# environment (compose reads them from .env), never from the image.
#
# RABBITMQ_QUEUES lists the job queues of the routes, separated by spaces
# ("commands reports" in compose; default: RABBITMQ_QUEUE, or "commands").
# Four users, each limited to the vhost RABBITMQ_VHOST and to exactly those
# routes (one daemon user serves the daemons of every route):
#   RABBITMQ_ADMIN_USER     everything (management UI)
#   RABBITMQ_CALLER_USER    may declare the job queues and publish to them, nothing else
#   RABBITMQ_DAEMON_USER    may use the job queues, their retry, delay and dead-letter queues
#   RABBITMQ_OPERATOR_USER  may read the dead-letter queues and publish to the default
#                           exchange (daemon dead: list, replay, purge), nothing else;
#                           only if RABBITMQ_OPERATOR_PASSWORD is set
#   RABBITMQ_CONSOLE_USER   the web console: the operator's rights, no more (it lists,
#                           replays and purges dead letters as daemon dead does);
#                           only if RABBITMQ_CONSOLE_PASSWORD is set
# No "guest" user exists. The daemon, operator and console users have the management
# tag, the least that lets a user read the management HTTP API: through it
# they check the policies and delivery limits in effect on their queues,
# which no AMQP method tells. It lets them see the vhost's queues, exchanges
# and bindings with their figures, and their own connections; it gives them
# no permission beyond their AMQP ones (docker/README.md, Security).
#
# RABBITMQ_CLUSTER_NODES, if set, makes this node one of a cluster: it lists
# the host names of every node, this one's included, separated by spaces
# ("rabbitmq-1 rabbitmq-2 rabbitmq-3"). Each node's name is rabbit@ its
# host name, so the host names must be fixed and resolvable by the others.
# The first listed node forms the cluster; every other node joins it by
# classic-config peer discovery (start the first one first), a
# network partition pauses the minority side (pause_minority), and the
# nodes authenticate each other with the Erlang cookie
# RABBITMQ_ERLANG_COOKIE, required then and the same on every node.
set -eu

: "${RABBITMQ_VHOST:=fpmq}"
: "${RABBITMQ_QUEUES:=${RABBITMQ_QUEUE:-commands}}"
: "${RABBITMQ_ADMIN_USER:=admin}"
: "${RABBITMQ_CALLER_USER:=caller}"
: "${RABBITMQ_DAEMON_USER:=daemon}"
: "${RABBITMQ_OPERATOR_USER:=operator}"
: "${RABBITMQ_OPERATOR_PASSWORD:=}"
: "${RABBITMQ_CONSOLE_USER:=console}"
: "${RABBITMQ_CONSOLE_PASSWORD:=}"
# The priority of the fpmq-* policies (see below): raise it above your own
# policies on these queues, or repeat their keys in yours.
: "${POLICY_PRIORITY:=1}"
# A dead letter is never dropped for being read too often.
DEAD_DELIVERY_LIMIT=1000000
case $POLICY_PRIORITY in
  '' | *[!0-9]*) echo "rabbitmq: POLICY_PRIORITY must be a whole number, got '$POLICY_PRIORITY'" >&2; exit 1 ;;
esac
for v in RABBITMQ_ADMIN_PASSWORD RABBITMQ_CALLER_PASSWORD RABBITMQ_DAEMON_PASSWORD; do
  eval "value=\${$v:-}"
  if [ -z "$value" ]; then
    echo "rabbitmq: $v is not set (make .env generates it)" >&2
    exit 1
  fi
done

# json escapes a string for a JSON document.
json() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
# q is the job queues as one alternation of a permission pattern, their
# dots escaped: (commands|reports).
q=
for queue in $RABBITMQ_QUEUES; do
  q="$q${q:+|}$(printf '%s' "$queue" | sed -e 's/\./\\\\./g')"
done
if [ -z "$q" ]; then
  echo "rabbitmq: RABBITMQ_QUEUES is empty" >&2
  exit 1
fi
q="($q)"
mine="^$q(\\\\.dead|\\\\.retry\\\\..+|\\\\.delay\\\\..+)?\$"
dead="^$q\\\\.dead\$"

# The operator's user: reading the dead-letter queue takes read on it
# (basic.consume; acks need nothing more, and a passive queue.declare needs
# no permission), and replaying takes write on the default exchange, which
# RabbitMQ checks as "amq.default" whatever the routing key. It may
# configure nothing. An .env from before this user has no password for it:
# the user is then left out, and only "daemon dead" cannot log in.
operator_user='' operator_permissions=''
if [ -n "$RABBITMQ_OPERATOR_PASSWORD" ]; then
  operator_user=",
    {\"name\": \"$(json "$RABBITMQ_OPERATOR_USER")\", \"password\": \"$(json "$RABBITMQ_OPERATOR_PASSWORD")\", \"tags\": \"management\"}"
  operator_permissions=",
    {\"user\": \"$(json "$RABBITMQ_OPERATOR_USER")\", \"vhost\": \"$(json "$RABBITMQ_VHOST")\", \"configure\": \"^\$\", \"write\": \"^amq\\\\.default\$\", \"read\": \"$dead\"}"
else
  echo "rabbitmq: RABBITMQ_OPERATOR_PASSWORD is not set: no $RABBITMQ_OPERATOR_USER user for daemon dead" >&2
fi
# The web console's user, with the operator's rights: it does what
# daemon dead does, from a browser. Left out without a password, as the
# operator's.
if [ -n "$RABBITMQ_CONSOLE_PASSWORD" ]; then
  operator_user="$operator_user,
    {\"name\": \"$(json "$RABBITMQ_CONSOLE_USER")\", \"password\": \"$(json "$RABBITMQ_CONSOLE_PASSWORD")\", \"tags\": \"management\"}"
  operator_permissions="$operator_permissions,
    {\"user\": \"$(json "$RABBITMQ_CONSOLE_USER")\", \"vhost\": \"$(json "$RABBITMQ_VHOST")\", \"configure\": \"^\$\", \"write\": \"^amq\\\\.default\$\", \"read\": \"$dead\"}"
else
  echo "rabbitmq: RABBITMQ_CONSOLE_PASSWORD is not set: no $RABBITMQ_CONSOLE_USER user for the console" >&2
fi

# Policies, one pair per job queue (RabbitMQ applies one policy per queue,
# the one of highest priority, so each names its queue exactly):
#   fpmq-QUEUE       gives the job queue a dead-letter target, its dead-letter
#                    queue, so that a job the broker drops (a quorum queue's
#                    delivery limit, 20 by default on RabbitMQ 4) becomes a
#                    dead letter with the broker's reason instead of vanishing;
#   fpmq-QUEUE-dead  lifts the delivery limit of the dead-letter queue, whose
#                    messages "daemon dead list" returns each time it reads
#                    them, and which has no dead-letter target of its own.
# The daemon also declares the queues it creates with the same as
# arguments (x-dead-letter-*, x-delivery-limit), which hold whatever policy
# applies (a policy's delivery-limit only if it is lower); the policies
# cover queues declared by older versions, and by the caller. RabbitMQ
# applies one policy per queue, the one of highest priority: a policy of
# yours on these queues replaces these, unless it repeats their keys or
# POLICY_PRIORITY is above its own. The daemon logs it, and "daemon dead"
# refuses to read a dead-letter queue that would drop jobs read too often.
policies=
for queue in $RABBITMQ_QUEUES; do
  name=$(json "$queue")
  pattern=$(printf '^%s$' "$queue" | sed -e 's/\./\\\\./g')
  policies="$policies${policies:+,}
    {\"vhost\": \"$(json "$RABBITMQ_VHOST")\", \"name\": \"fpmq-$name\", \"pattern\": \"$pattern\", \"apply-to\": \"queues\", \"priority\": $POLICY_PRIORITY,
     \"definition\": {\"dead-letter-exchange\": \"\", \"dead-letter-routing-key\": \"$name.dead\"}},
    {\"vhost\": \"$(json "$RABBITMQ_VHOST")\", \"name\": \"fpmq-$name-dead\", \"pattern\": \"$(printf '%s' "$pattern" | sed -e 's/\$$//')\\\\.dead\$\", \"apply-to\": \"queues\", \"priority\": $POLICY_PRIORITY,
     \"definition\": {\"delivery-limit\": $DEAD_DELIVERY_LIMIT}}"
done

definitions=/var/lib/rabbitmq/fpmq-definitions.json
umask 077
cat >"$definitions" <<JSON
{
  "vhosts": [{"name": "$(json "$RABBITMQ_VHOST")"}],
  "users": [
    {"name": "$(json "$RABBITMQ_ADMIN_USER")", "password": "$(json "$RABBITMQ_ADMIN_PASSWORD")", "tags": "administrator"},
    {"name": "$(json "$RABBITMQ_CALLER_USER")", "password": "$(json "$RABBITMQ_CALLER_PASSWORD")", "tags": ""},
    {"name": "$(json "$RABBITMQ_DAEMON_USER")", "password": "$(json "$RABBITMQ_DAEMON_PASSWORD")", "tags": "management"}$operator_user
  ],
  "policies": [$policies
  ],
  "permissions": [
    {"user": "$(json "$RABBITMQ_ADMIN_USER")", "vhost": "$(json "$RABBITMQ_VHOST")", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "$(json "$RABBITMQ_CALLER_USER")", "vhost": "$(json "$RABBITMQ_VHOST")", "configure": "^$q\$", "write": "^amq\\\\.default\$", "read": "^\$"},
    {"user": "$(json "$RABBITMQ_DAEMON_USER")", "vhost": "$(json "$RABBITMQ_VHOST")", "configure": "$mine", "write": "^amq\\\\.default\$", "read": "$mine"}$operator_permissions
  ]
}
JSON
if [ -n "${RABBITMQ_CLUSTER_NODES:-}" ]; then
  if [ -z "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    echo "rabbitmq: RABBITMQ_CLUSTER_NODES is set but RABBITMQ_ERLANG_COOKIE is not (make .env generates it)" >&2
    exit 1
  fi
  # The server and the CLI tools (rabbitmqctl, the health check) read the
  # cookie from this file, which only its owner may read.
  cookie="${HOME:-/var/lib/rabbitmq}/.erlang.cookie"
  rm -f "$cookie"
  printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$cookie"
  chmod 0400 "$cookie"
  # The first listed node is the seed: it starts as a cluster of its own,
  # and every other node joins it. (Were every node to list all, RabbitMQ 4's
  # peer discovery would keep a node waiting until the others run, and
  # RabbitMQ 3's could form two clusters when they start together.)
  seed=${RABBITMQ_CLUSTER_NODES%% *}
  # HOSTNAME is not POSIX, but Docker sets it in every container's
  # environment; hostname(1) is the fallback.
  # shellcheck disable=SC3028
  me=${HOSTNAME:-$(hostname)}
  {
    echo "# Written by fpmq-definitions.sh from RABBITMQ_CLUSTER_NODES."
    if [ "$me" != "$seed" ]; then
      echo "cluster_formation.peer_discovery_backend = classic_config"
      echo "cluster_formation.classic_config.nodes.1 = rabbit@$seed"
      echo "cluster_formation.classic_config.nodes.2 = rabbit@$me"
    fi
    echo "cluster_partition_handling = pause_minority"
  } >/etc/rabbitmq/conf.d/20-fpmq-cluster.conf
fi

if command -v docker-entrypoint.sh >/dev/null 2>&1; then
  exec docker-entrypoint.sh "$@"
fi
exec "$@"
