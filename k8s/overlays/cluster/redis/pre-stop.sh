#!/bin/sh
# preStop hook of the redis container (ConfigMap redis-cluster).
#
# When a master pod is stopped on purpose (rolling update, node drain), ask
# one of its healthy replicas to take over first with a coordinated CLUSTER
# FAILOVER: the master pauses its clients, the replica catches up, the roles
# swap. No acknowledged write is lost and clients see a pause of well under a
# second instead of cluster-node-timeout (5 s) plus the election. A replica
# (or a master without a healthy replica) just stops.
set -u
cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }

role=$(cli role 2>/dev/null | head -n 1 | tr -d '\r')
[ "$role" = "master" ] || exit 0
me=$(cli cluster myid 2>/dev/null | tr -d '\r')
[ -n "$me" ] || exit 0

cli cluster nodes 2>/dev/null | tr -d '\r' | while read -r _id addr flags master _rest; do
  [ "$master" = "$me" ] || continue
  case "$flags" in *fail*|*handshake*|*noaddr*) continue ;; esac
  host=${addr#*,}
  [ "$host" != "$addr" ] && [ -n "$host" ] || host=${addr%:*}
  echo "pre-stop: handing over to replica $host"
  redis-cli -h "$host" -p 6379 cluster failover >/dev/null 2>&1 || continue
  # Wait (at most ~15 s) until this node has become a replica.
  i=0
  while [ $i -lt 30 ]; do
    [ "$(cli role 2>/dev/null | head -n 1 | tr -d '\r')" = "slave" ] && exit 0
    sleep 0.5
    i=$((i + 1))
  done
  exit 0
done
exit 0
