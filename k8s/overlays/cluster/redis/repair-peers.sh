#!/bin/sh
# Sidecar of each Redis Cluster pod (ConfigMap redis-cluster).
#
# Redis nodes reach each other on the cluster bus by IP (CLUSTER MEET takes
# no hostnames), and nodes.conf remembers the peers' IPs. A pod that comes
# back with a new IP is normally re-learnt by the others when it pings them,
# but if every pod got a new IP at once (all rescheduled, a full cluster
# restart) nobody can reach anybody. Every 20 s this loop looks for peers
# whose announced hostname now resolves to a different IP than the one
# recorded, and re-introduces them at the new IP with CLUSTER MEET; Redis
# matches the node ID and just updates the address.
#
# It only acts on a node that is already part of a formed cluster and only
# on peers the cluster already knows, so it never joins an empty node to
# anything (bootstrap-job.yaml forms the cluster).
set -u
trap 'exit 0' TERM INT

cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }

while :; do
  sleep 20 &
  wait $! || true

  known=$(cli cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_known_nodes:\([0-9][0-9]*\)$/\1/p')
  [ -n "$known" ] && [ "$known" -gt 1 ] || continue

  # CLUSTER NODES line: <id> <ip:port@cport[,hostname]> <flags> ...
  cli cluster nodes 2>/dev/null | tr -d '\r' | while read -r id addr flags rest; do
    case "$flags" in *myself*|*handshake*|*noaddr*) continue ;; esac
    host=${addr#*,}
    [ "$host" != "$addr" ] && [ -n "$host" ] || continue
    ip=${addr%:*}
    # getent is in the redis image (Debian libc-bin); no DNS answer: skip.
    new=$(getent hosts "$host" 2>/dev/null | head -n 1)
    new=${new%%[[:space:]]*}
    [ -n "$new" ] && [ "$new" != "$ip" ] || continue
    echo "repair-peers: $host ($id) recorded at $ip, resolves to $new: CLUSTER MEET"
    cli cluster meet "$new" 6379 16379 >/dev/null 2>&1 || echo "repair-peers: CLUSTER MEET $new failed"
  done
done
