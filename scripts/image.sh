#!/usr/bin/env bash
# `make image`: builds deploy/Dockerfile with podman into transitd:<version>.
#
# No base image is pulled from a registry. The first run makes debian:12
# itself: debootstrap (minbase) from the Debian mirror this machine's apt
# already uses, a tarball of that root filesystem kept in $IMAGE_STATE_DIR,
# and `podman import` into podman's own storage as localhost/debian:12. Later
# runs reuse that image and podman's layer cache, so a second `make image`
# with no change takes seconds.
#
# Environment: TRANSITD_IMAGE (transitd:<version>), IMAGE_STATE_DIR
# (/var/lib/transitd/image), IMAGE_REBASE=1 (make debian:12 afresh from the
# mirror, e.g. for security updates; the layers above it follow), and
# CONTAINERS_CONF (deploy/containers.conf: runc, no rlimits).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { echo "image: $*"; }
die() { echo "image: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "podman runs rootful here (debootstrap and runc need root): run as root or with sudo"
bash scripts/bootstrap.sh --image

export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers.conf}
version=$(sed -n 's/^#define TRANSITD_VERSION "\(.*\)"$/\1/p' src/version.h)
[ -n "$version" ] || die "no TRANSITD_VERSION in src/version.h"
image=${TRANSITD_IMAGE:-transitd:$version}
state=${IMAGE_STATE_DIR:-${TRANSITD_STATE_DIR:-/var/lib/transitd}/image}
base=debian:12
base_suite=bookworm
base_tar=$state/debian-12-rootfs.tar

# apt_uri SUITE: the first URI this machine's apt configuration fetches SUITE
# from, in deb822 (*.sources) or one-line (sources.list, *.list) form.
apt_uri() {
  local suite=$1 f
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      if [ -f "$f" ]; then cat "$f" && echo; fi
    done
  } | awk -v want="$suite" '
    function flush() {
      if (!done && enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " want " ")) {
        split(uris, u, " "); print u[1]; done = 1
      }
      types = uris = suites = enabled = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    { key = tolower($1); sub(/^[^:]*:[ \t]*/, "") }
    key == "types:" { types = $0 }
    key == "uris:" { uris = $0 }
    key == "suites:" { suites = $0 }
    key == "enabled:" { enabled = tolower($0) }
    END { flush() }'
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    if [ -f "$f" ]; then cat "$f"; fi
  done |
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
    awk -v want="$suite" '$1 == "deb" && $3 == want { print $2 }'
}

# make_base: debootstrap debian:12 into a tarball under $state (unless one is
# kept there already), then import it as localhost/debian:12.
make_base() {
  local codename mirror security rootfs
  mkdir -p "$state"
  if [ "${IMAGE_REBASE:-0}" = 1 ] || [ ! -s "$base_tar" ]; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    mirror=${DEBIAN_MIRROR:-$(apt_uri "$codename" | head -n 1)}
    security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri "$codename-security" | head -n 1)}
    [ -n "$mirror" ] || die "no Debian mirror for '$codename' in /etc/apt/sources.list{,.d}; set DEBIAN_MIRROR"
    mirror=${mirror%/}
    say "making $base: debootstrap $base_suite from this machine's Debian mirror (a few minutes)"
    rootfs=$state/rootfs.tmp
    rm -rf "$rootfs"
    debootstrap --variant=minbase --components=main "$base_suite" "$rootfs" "$mirror" \
      >"$state/debootstrap.log" 2>&1 || die "debootstrap failed; see $state/debootstrap.log"
    # The same three suites an official debian:12 image lists.
    rm -f "$rootfs/etc/apt/sources.list"
    {
      printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
        "$mirror" "$base_suite" "$base_suite"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
      if [ -n "$security" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "${security%/}" "$base_suite"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
      fi
    } >"$rootfs/etc/apt/sources.list.d/debian.sources"
    # Nothing of the host's or of the download stays in the image.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/debootstrap
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
  fi
  say "importing $base from $base_tar"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$base_tar" "$base" >/dev/null
}

start=$(date +%s)
log=$root/.run/image/build.log
mkdir -p "$(dirname "$log")"
# One base at a time, should two checkouts build at once.
mkdir -p "$state"
exec 9>"$state/lock"
flock 9
if [ "${IMAGE_REBASE:-0}" = 1 ] || ! podman image exists "localhost/$base"; then
  make_base
fi
flock -u 9

say "building $image from deploy/Dockerfile"
# npm in the build trusts what this machine trusts (see the Dockerfile).
secret=()
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  secret=(--secret "id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt")
fi
previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
# --pull=never: every FROM is local. Docker format keeps the HEALTHCHECK (OCI
# images have no field for it). The ignore file keeps build/, .run/ and
# node_modules out of the context.
podman build --pull=never --format docker --layers "${secret[@]}" \
  --ignorefile deploy/Dockerfile.dockerignore \
  -f deploy/Dockerfile -t "$image" . >"$log" 2>&1 || {
  tail -n 40 "$log" >&2
  die "podman build failed; the whole log is in $log"
}
# The image this one replaces (untagged now) goes, with the layers only it
# used; the build stage's layers stay as the cache of the next build.
current=$(podman image inspect --format '{{.Id}}' "$image")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
say "$image built in $(($(date +%s) - start)) s ($(podman image inspect --format '{{.Size}}' "$image" |
  awk '{ printf "%.0f MB", $1 / 1e6 }'))"
