#!/bin/sh
# Forms the Redis Cluster once (Job redis-cluster-bootstrap). Idempotent:
# safe to run again at every `kubectl apply -k` (the Job is deleted an hour
# after it finished, and re-created by the next apply).
# Needs: POD_NAMESPACE (downward API), REDISCLI_AUTH (Secret), NODES (count).
set -eu

nodes=${NODES:-6}
hosts=""
i=0
while [ "$i" -lt "$nodes" ]; do
  hosts="$hosts redis-cluster-$i.redis-cluster.${POD_NAMESPACE}.svc"
  i=$((i + 1))
done

# 1. Every node up. The headless Service publishes not-ready pods too, so
#    the names resolve as soon as the pods have IPs.
for h in $hosts; do
  until [ "$(redis-cli -h "$h" -p 6379 ping 2>/dev/null | tr -d '\r')" = "PONG" ]; do
    echo "waiting for $h"
    sleep 5
  done
done
echo "all $nodes nodes answer"

# 2. Already formed? A node that knows other nodes or serves slots belongs to
#    a cluster: never run --cluster create again (it would refuse anyway).
formed=""
for h in $hosts; do
  info=$(redis-cli -h "$h" -p 6379 cluster info | tr -d '\r')
  known=$(printf '%s\n' "$info" | sed -n 's/^cluster_known_nodes:\([0-9]*\)$/\1/p')
  slots=$(printf '%s\n' "$info" | sed -n 's/^cluster_slots_assigned:\([0-9]*\)$/\1/p')
  if [ "${known:-1}" -gt 1 ] || [ "${slots:-0}" -gt 0 ]; then
    formed=$h
    break
  fi
done

first=${hosts# }
first=${first%% *}
if [ -n "$formed" ]; then
  echo "cluster already formed ($formed knows other nodes or serves slots): checking it"
  if redis-cli --cluster check "$formed:6379"; then
    echo "cluster is healthy; nothing to do"
    exit 0
  fi
  echo "the cluster exists but the check failed: not touching it. Inspect with" >&2
  echo "  kubectl exec redis-cluster-0 -c redis -- sh -c 'redis-cli cluster nodes'" >&2
  echo "and repair by hand (redis-cli --cluster fix ...), see k8s/README.md." >&2
  exit 1
fi

# 3. Create: 3 masters, one replica each. redis-cli resolves the hostnames
#    itself before CLUSTER MEET (Redis >= 7.0).
set --
for h in $hosts; do set -- "$@" "$h:6379"; done
echo "creating the cluster: $*"
redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes

until redis-cli -h "$first" -p 6379 cluster info | tr -d '\r' | grep -q '^cluster_state:ok$'; do
  echo "waiting for cluster_state:ok"
  sleep 2
done
redis-cli --cluster check "$first:6379"
echo "cluster formed"
