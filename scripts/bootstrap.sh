#!/usr/bin/env bash
# Installs the Debian packages transitd needs to build, run, test and benchmark.
# Idempotent: prints what it installs, and does nothing when everything is present.
set -euo pipefail

packages=(
  build-essential pkg-config
  libhttp-parser-dev zlib1g-dev libpq-dev libhiredis-dev libjansson-dev libsodium-dev
  libjwt-dev uuid-dev libcmocka-dev librabbitmq-dev
  postgresql redis-server rabbitmq-server
  python3-pytest python3-requests python3-psycopg2 python3-pika
  clang libfuzzer-14-dev
  chromium python3-websocket
  npm
)
case "${1:-}" in
--bench) packages+=(wrk nginx-light postgresql-contrib haproxy) ;;
--cluster) packages+=(haproxy curl) ;;
# make image / make test-image: rootful podman on runc (crun refuses this
# VM's cgroups), and debootstrap for the locally built debian:12 base image.
--image) packages+=(podman runc debootstrap debian-archive-keyring python3-yaml) ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
# npm may come with the machine's own Node.js rather than Debian's.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"

[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts its own services on install; transitd runs private ones.
for svc in redis-server postgresql nginx haproxy rabbitmq-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
echo "bootstrap: done"
