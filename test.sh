#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine, then runs them all.
#
#   ./test.sh                 # install what is missing, then cargo test --workspace
#   ./test.sh -- scylla::     # extra arguments go to cargo test (here: a filter)
#
# The tests start real servers, never stand-ins:
#   redis-server, redis-cli  Redis Cluster tests (3 masters + 3 replicas on loopback)
#   openssl                  certificates for the SMTP tests
#   aiosmtpd (PyPI)          the SMTP server the mail transport is tested against
#   node, npm                oidc-provider (npm, OpenID Certified): the OpenID provider
#                            the social-login tests sign in at; `npm ci` installs it
#                            from the committed lock into tests/fixtures/oidc-provider
#   chromium (Debian)        the browser tests, headless over the DevTools protocol
#                            (tests/fixtures/browser; no browser is downloaded)
#   java 17, mvn             Keycloak (org.keycloak:keycloak-quarkus-dist, fetched once into
#                            ~/.cache/portcullis) for the social-login tests, and
#                            Apache Cassandra 5 nodes for the ScyllaDB store; the
#                            fixture fetches org.apache.cassandra:cassandra-all from
#                            Maven Central once, into ~/.cache/portcullis
#                            (PORTCULLIS_CASSANDRA_CACHE to move it)
#
# A shell script rather than `cargo xtask`: installing system packages is a
# shell job, it must work before anything is compiled, and it is short enough
# to read before running it as root.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '==> %s\n' "$*" >&2; }

missing_apt=()
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing_apt+=(redis-server)
command -v openssl >/dev/null || missing_apt+=(openssl)
command -v java >/dev/null || missing_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing_apt+=(maven)
command -v python3 >/dev/null || missing_apt+=(python3 python3-pip)
command -v node >/dev/null && command -v npm >/dev/null || missing_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing_apt+=(chromium)
need_pip=0
python3 -c 'import aiosmtpd' 2>/dev/null || need_pip=1

if ((${#missing_apt[@]})) || ((need_pip)); then
  if [ "$(id -u)" -ne 0 ]; then
    sudo=""
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
    if [ -z "$sudo" ]; then
      {
        echo "test.sh: the tests need software this machine lacks, and installing it needs root."
        ((${#missing_apt[@]})) && echo "  as root: apt-get install -y ${missing_apt[*]}"
        ((need_pip)) && echo "  then:    python3 -m pip install aiosmtpd   (or: apt-get install -y python3-aiosmtpd)"
        echo "Then run ./test.sh again."
      } >&2
      exit 1
    fi
  else
    sudo=""
  fi
  if ((${#missing_apt[@]})); then
    say "apt-get install ${missing_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  fi
  if ((need_pip)); then
    say "pip install aiosmtpd"
    $sudo python3 -m pip install -q aiosmtpd 2>/dev/null \
      || $sudo python3 -m pip install -q --break-system-packages aiosmtpd
  fi
fi

# Debian starts a redis-server service on 6379; the tests start their own.
if command -v systemctl >/dev/null && [ "$(id -u)" -eq 0 ]; then
  systemctl stop redis-server 2>/dev/null || true
fi

op_dir=http-edge/tests/fixtures/oidc-provider
if [ ! -d "$op_dir/node_modules/oidc-provider" ] || [ "$op_dir/package-lock.json" -nt "$op_dir/node_modules/.package-lock.json" ]; then
  say "npm ci (the test OpenID provider, $op_dir)"
  (cd "$op_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

say "$(redis-server --version | cut -d' ' -f1-3), $(java -version 2>&1 | head -1), $(mvn -v 2>/dev/null | head -1 | cut -d' ' -f1-3), aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)'), node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | tail -1 | cut -d' ' -f1-2)"
say "cargo test --workspace $*"
exec cargo test --workspace "$@"
