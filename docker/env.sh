#!/usr/bin/env bash
# Makes .env ready for compose: creates it from .env.example if it does not
# exist, then gives every *_PASSWORD, *_TOKEN and *_COOKIE (the RabbitMQ
# cluster's Erlang cookie) that is missing or empty a random value (letters and digits: the passwords go into AMQP URLs). A value
# that is set is never changed. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077

created=no
if [ ! -f .env ]; then
  cp .env.example .env
  chmod 0600 .env
  created=yes
fi

random() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

filled=()
while IFS= read -r key; do
  if grep -q "^$key=." .env; then
    continue # set: keep it
  fi
  value=$(random)
  if grep -q "^$key=" .env; then
    sed -i "s|^$key=\$|$key=$value|" .env
  else
    printf '%s=%s\n' "$key" "$value" >>.env
  fi
  filled+=("$key")
done < <(sed -n 's/^\([A-Z_]*_\(PASSWORD\|TOKEN\|COOKIE\)\)=.*/\1/p' .env.example)

if [ "$created" = yes ]; then
  echo "env: created .env with new RabbitMQ and console passwords and admin token"
elif [ ${#filled[@]} -gt 0 ]; then
  echo "env: generated ${filled[*]} in .env (if the stack runs, make rotate applies them)"
fi
