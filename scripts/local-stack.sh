#!/usr/bin/env bash
# `docker compose` for docker-compose.yml on a machine with podman and no image registry (the
# development machines and CI): Compose v2 (.cache/bin/docker-compose) drives podman through its
# Docker-compatible API, on the images of scripts/local-images.sh (deploy/local/stack.env names them).
#   scripts/local-stack.sh up -d --wait nats-1 nats-2 nats-3 mongo shows reservations api proxy prometheus
#   scripts/local-stack.sh ps
#   scripts/local-stack.sh down -v
# With DOCKER_HOST unset it starts `podman system service` on .cache/podman/podman.sock once (and
# leaves it running for the next call). podman runs a container's health check from a systemd
# timer; without systemd (these machines) nothing runs them, so this script runs them every few
# seconds for as long as the compose command runs (`up` waits on them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CONTAINERS_CONF=$ROOT/deploy/local/containers.conf
HEALTH_INTERVAL_S=2

if [ -z "${DOCKER_HOST:-}" ]; then
	dir=$ROOT/.cache/podman
	mkdir -p "$dir"
	if ! curl -sf --unix-socket "$dir/podman.sock" http://podman/_ping >/dev/null 2>&1; then
		rm -f "$dir/podman.sock"
		nohup podman system service --time=0 "unix://$dir/podman.sock" >"$dir/service.log" 2>&1 &
		echo $! >"$dir/service.pid"
		for _ in $(seq 100); do
			curl -sf --unix-socket "$dir/podman.sock" http://podman/_ping >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	export DOCKER_HOST=unix://$dir/podman.sock
fi

# The local images, unless the caller chose others.
while IFS='=' read -r name value; do
	case "$name" in '' | \#*) continue ;; esac
	[ -n "${!name:-}" ] || export "$name=$value"
done <"$ROOT/deploy/local/stack.env"

compose=$ROOT/.cache/bin/docker-compose
# test/integration/readme.test.ts may be building the same binary right now (from a copy of the
# module in .cache/src, removed when done): wait for that build rather than race it.
for _ in $(seq 900); do
	compgen -G "$ROOT/.cache/src/v2-*" >/dev/null || break
	sleep 1
done
[ -x "$compose" ] || node -e 'require("./scripts/servers").ensureBinary("docker-compose")'

run_health_checks() {
	while sleep "$HEALTH_INTERVAL_S"; do
		for id in $(podman ps -q --filter health=starting --filter health=healthy --filter health=unhealthy); do
			podman healthcheck run "$id" >/dev/null 2>&1 || true
		done
	done
}
run_health_checks &
checks=$!
trap 'kill "$checks" 2>/dev/null || true' EXIT
"$compose" "$@"
