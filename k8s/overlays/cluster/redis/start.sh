#!/bin/sh
# Entry point of each Redis Cluster pod (ConfigMap redis-cluster).
# Needs: POD_NAME, POD_NAMESPACE, POD_IP (downward API), REDIS_PASSWORD (Secret).
set -eu

# The password reaches redis-server through an included file on a tmpfs,
# not through its command line (visible in /proc to the whole pod).
umask 077
cat > /run/redis/auth.conf <<EOF
requirepass "${REDIS_PASSWORD}"
masterauth "${REDIS_PASSWORD}"
EOF

# The announced hostname is the pod's stable DNS name in the headless
# Service; the IP is the current one. Peers that still know the old IP learn
# the new one when this node pings them (repair-peers.sh covers the case
# where every pod moved at once).
exec redis-server /etc/redis/redis.conf \
  --cluster-announce-hostname "${POD_NAME}.redis-cluster.${POD_NAMESPACE}.svc" \
  --cluster-announce-ip "${POD_IP}"
