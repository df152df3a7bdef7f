#!/usr/bin/env bash
# Build the images of the local stack (folio:cpu, folio-chroma:local, folio-llm:local) with
# docker-compose, skipping each one whose inputs have not changed: Docker's classic builder would
# otherwise send and hash the 1 GB wheelhouse again for every image just to find its cache (minutes
# on a busy 2-core machine). An image's inputs are its Dockerfile, the wheelhouse's wheel names and
# sizes, the base image, and for Folio its sources; their hash is a second tag on the image.
#
#   docker/build-images.sh [compose options...]    (e.g. -p NAME; the env selects ports and files)
set -euo pipefail
cd "$(dirname "$0")/.."

compose=(docker-compose -f docker-compose.yml -f docker/compose.local.yml --profile cpu "$@")
base=${FOLIO_BASE_IMAGE:-folio-base:bookworm}
base_id=$(docker image inspect --format '{{.Id}}' "$base")
wheels=$(cd build/wheelhouse && find . -name '*.whl' -printf '%f %s\n' | sort)
sources=$(find pyproject.toml README.md folio ingest retrieval prompts eval app -type f \
    -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)

build() {  # service image dockerfile [extra inputs]
    local service=$1 image=$2 dockerfile=$3 extra=${4:-}
    local hash tag
    hash=$( { echo "$base_id"; cat "$dockerfile"; echo "$wheels"; echo "$extra"; } | sha256sum | cut -c1-16)
    tag="${image%%:*}:inputs-$hash"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        docker tag "$tag" "$image"
        echo "$image is up to date ($tag)"
        return
    fi
    local started=$SECONDS
    "${compose[@]}" build "$service"
    docker tag "$image" "$tag"
    echo "built $image in $((SECONDS - started)) s ($tag)"
}

build api "${FOLIO_IMAGE:-folio:cpu}" Dockerfile "$sources"
build chroma folio-chroma:local docker/chroma.Dockerfile
build llm-cpu folio-llm:local docker/llm.Dockerfile
