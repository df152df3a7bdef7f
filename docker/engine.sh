#!/usr/bin/env bash
# Make sure a Docker engine, docker-compose and debootstrap are here (Debian packages, installed
# when missing) and that dockerd answers; start it when it does not (low priority, so benchmarks
# running beside it keep their share; containers inherit the priority).
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! $SUDO docker info >/dev/null 2>&1; then
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
        $SUDO systemctl start docker
    else
        echo "starting dockerd (log: /tmp/dockerd.log)"
        $SUDO sh -c 'nohup nice -n 15 dockerd >/tmp/dockerd.log 2>&1 &'
    fi
    for _ in $(seq 60); do
        $SUDO docker info >/dev/null 2>&1 && break
        sleep 1
    done
    $SUDO docker info >/dev/null 2>&1 || {
        echo "dockerd did not start; see /tmp/dockerd.log" >&2
        tail -n 20 /tmp/dockerd.log >&2 || true
        exit 1
    }
fi
echo "docker $($SUDO docker version --format '{{.Server.Version}}'), $(docker-compose version --short)"
