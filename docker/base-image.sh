#!/usr/bin/env bash
# Build the Debian bookworm base image offline-from-a-registry: debootstrap from this machine's
# Debian mirror, then `docker import`. No registry is needed. The image is reused while its inputs
# (this script, the suite, the mirror, the package list) are unchanged: their hash is the image's
# label and a second tag, so a rebuild only happens when one of them changes.
#
#   docker/base-image.sh [IMAGE]       (default folio-base:bookworm; MIRROR=... to override)
set -euo pipefail

IMAGE=${1:-folio-base:bookworm}
SUITE=bookworm
# Python 3.11 (bookworm's python3) plus what the wheels do not bundle: libgomp for llama.cpp's
# OpenMP build, libstdc++ for onnxruntime, Tesseract (Folio's OCR engine; without it OCR falls
# back to the slower RapidOCR), tini as PID 1; ca-certificates for pip inside derived images.
PACKAGES=python3,python3-venv,libgomp1,libstdc++6,ca-certificates,tini,tesseract-ocr

mirror_from_apt_sources() {
    # The first Debian URI that serves $SUITE in the deb822 or one-line apt sources.
    local uri
    uri=$(awk -v suite="$SUITE" '
        /^URIs:/ {u=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == suite && u ~ /debian\/?$/) {print u; exit}}
        /^deb / && $3 == suite && $2 ~ /debian\/?$/ {print $2; exit}
    ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(mirror_from_apt_sources)}

inputs_hash=$( { cat "$0"; echo "$SUITE $MIRROR $PACKAGES"; } | sha256sum | cut -c1-16)
hash_tag="${IMAGE%%:*}:$SUITE-$inputs_hash"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

if docker image inspect "$hash_tag" >/dev/null 2>&1; then
    docker tag "$hash_tag" "$IMAGE"
    echo "base image $IMAGE is up to date ($hash_tag)"
    exit 0
fi

command -v debootstrap >/dev/null || {
    echo "debootstrap is missing: apt-get install debootstrap (make test-docker installs it)" >&2
    exit 1
}

rootfs=$(mktemp -d /tmp/folio-rootfs.XXXXXX)
trap '$SUDO rm -rf "$rootfs"' EXIT
echo "debootstrap $SUITE from $MIRROR into $rootfs"
$SUDO debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >/tmp/folio-debootstrap.log 2>&1 || {
    tail -n 20 /tmp/folio-debootstrap.log >&2
    exit 1
}
# Smaller image: no downloaded .debs, package lists or docs.
$SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
echo "deb $MIRROR $SUITE main" | $SUDO tee "$rootfs/etc/apt/sources.list" >/dev/null

$SUDO tar -C "$rootfs" -c . | docker import \
    --change "LABEL org.folio.base.inputs=$inputs_hash" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$hash_tag"
docker tag "$hash_tag" "$IMAGE"
echo "built base image $IMAGE ($hash_tag)"
