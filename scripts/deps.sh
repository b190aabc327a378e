#!/usr/bin/env bash
# Installs every Debian package that building, running and testing rtcd need.
# Idempotent: when everything is present it prints nothing and exits 0.
# Uses sudo when not root. Usage: scripts/deps.sh [--bench]
set -eu

# Build and run.
pkgs=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libssl-dev libsqlite3-dev sqlite3 libpq-dev libhiredis-dev
  libc-ares-dev libjansson-dev libexpat1-dev libwslay-dev
  libcurl4-openssl-dev libinih-dev libsrtp2-dev openssl
)
# Tests: unit tests, real peers and servers started by the test scripts.
pkgs+=(
  libcmocka-dev sip-tester postgresql redis-server coturn baresip
  python3 iproute2 procps socat
)
# Benchmarks: the anchors measured beside rtcd.
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(libosip2-dev kamailio kamailio-tls-modules kamailio-websocket-modules kamailio-presence-modules)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Package post-install scripts may start servers (postgresql, redis, coturn);
# tests start their own on loopback test ports, so the system ones are not needed.
