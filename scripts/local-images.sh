#!/usr/bin/env bash
# Builds every image that docker-compose.yml runs, locally with podman, for machines that reach the
# package registries but no image registry (the development machines and CI). Nothing is pulled:
#   localhost/tickets-base:bookworm     Debian bookworm (debootstrap from apt's own mirror), the host's
#                                       CA bundle, a `node` user (uid 1000), wget, Node 22 and npm 10
#   localhost/theatre-tickets:local     the Dockerfile, with the base above as NODE_IMAGE
#   localhost/tickets-nats:local        .cache/bin/nats-server
#   localhost/tickets-mongo:local       FerretDB (.cache/bin/ferretdb) on Debian's PostgreSQL
#   localhost/tickets-nginx:local       Debian's nginx (1.22)
#   localhost/tickets-prometheus:local  Debian's prometheus (2.42)
# Each image carries a label with the hash of its inputs; an image whose inputs did not change is not
# built again (podman's own image store keeps the images between runs). `--force` rebuilds all.
# Prints one line per image: built or cached, and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# debootstrap and chroot live in sbin, which a non-login root shell may not have on PATH.
export PATH="$PATH:/usr/sbin:/sbin"
export CONTAINERS_CONF="$ROOT/deploy/local/containers.conf"

BASE=localhost/tickets-base:bookworm
NPM_SPEC=npm@10
HOST_CA=/etc/ssl/certs/ca-certificates.crt
FORCE=${1:-}
LABEL=tickets.inputs

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tickets-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The Debian mirror apt already uses (deb822 `URIs:` or a one-line `deb` entry).
debian_mirror() {
	local uri
	uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | awk '{print $2}' | head -n 1)
	[ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | grep debian |
		grep -v security | awk '{print $2}' | head -n 1)
	echo "${uri:-http://deb.debian.org/debian}"
}

inputs_label() { podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }

# Whether image $1 must be built for inputs hash $2; prints what happened either way.
needs_build() {
	if [ "$FORCE" != "--force" ] && [ "$(inputs_label "$1")" = "$2" ]; then
		echo "cached  $1"
		return 1
	fi
}

# Runs a build of image $1, then removes the image it replaced (unless a container still uses it),
# so that rebuilds do not pile up old images; podman keeps the build's cached layers.
timed() {
	local image=$1 started=$SECONDS old new
	shift
	old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
	"$@" >/dev/null
	new=$(podman image inspect --format '{{.Id}}' "$image")
	if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
	echo "built   $image in $((SECONDS - started)) s"
}

files_hash() { sha256sum "$@" | sha256sum | cut -c1-32; }

NODE_BIN=$(readlink -f node_modules/node/bin/node)
# Everything the base is made of: this recipe, the CA bundle, the mirror, Node and the npm spec.
base_inputs() {
	{
		declare -f build_base
		echo "$(debian_mirror) $NPM_SPEC"
		sha256sum "$HOST_CA" "$NODE_BIN"
	} | sha256sum | cut -c1-32
}

build_base() {
	local rootfs=$WORK/rootfs
	debootstrap --variant=minbase --include=ca-certificates,wget bookworm "$rootfs" "$(debian_mirror)" \
		>"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log" >&2
		return 1
	}
	# Containers reach the registries only through the host's CA bundle.
	install -m 0644 "$HOST_CA" "$rootfs/usr/local/share/ca-certificates/host-ca-bundle.crt"
	install -m 0644 "$HOST_CA" "$rootfs/etc/ssl/certs/host-ca-bundle.crt"
	chroot "$rootfs" useradd --uid 1000 --user-group --create-home --shell /bin/bash node
	install -m 0755 "$NODE_BIN" "$rootfs/usr/local/bin/node"
	(cd "$WORK" && npm pack "$NPM_SPEC" --silent >npm-pack.txt)
	mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
	tar -xzf "$WORK/$(tail -n 1 "$WORK/npm-pack.txt")" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components 1
	ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
	ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | podman import --quiet \
		--change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca-bundle.crt" \
		--change "ENV NPM_CONFIG_UPDATE_NOTIFIER=false" \
		--change "LABEL $LABEL=$1" \
		--change 'CMD ["node"]' \
		- "$BASE"
	rm -rf "$rootfs"
}

# build_image IMAGE CONTAINERFILE [FILE...]: a Containerfile of deploy/local/ on the base, with the
# given files in its build context.
build_image() {
	local image=$1 containerfile=$2
	shift 2
	local inputs
	inputs=$(files_hash "$containerfile" "$@" <(inputs_label "$BASE"))
	needs_build "$image" "$inputs" || return 0
	local context=$WORK/context-${image##*/}
	mkdir -p "$context"
	[ $# -eq 0 ] || cp "$@" "$context/"
	timed "$image" podman build --quiet --format docker --build-arg "BASE=$BASE" --label "$LABEL=$inputs" \
		-f "$containerfile" -t "$image" "$context"
}

# The app image from the Dockerfile, as users build it, but on the local base.
build_app() {
	local image=localhost/theatre-tickets:local inputs
	inputs=$(files_hash Dockerfile .dockerignore package.json package-lock.json tsconfig.json \
		tsconfig.build.json moleculer.config.ts $(find lib mixins services public -type f | sort) \
		<(inputs_label "$BASE"))
	needs_build "$image" "$inputs" || return 0
	# --format docker keeps the Dockerfile's HEALTHCHECK (the OCI format has none).
	timed "$image" podman build --quiet --format docker --build-arg "NODE_IMAGE=$BASE" \
		--label "$LABEL=$inputs" -t "$image" .
}

started=$SECONDS
node -e 'const s = require("./scripts/servers"); s.ensureBinary("nats-server"); s.ensureBinary("ferretdb")'

base=$(base_inputs)
if needs_build "$BASE" "$base"; then timed "$BASE" build_base "$base"; fi

build_app
build_image localhost/tickets-nats:local deploy/local/nats.Containerfile .cache/bin/nats-server
build_image localhost/tickets-mongo:local deploy/local/mongo.Containerfile .cache/bin/ferretdb \
	deploy/local/mongo-entrypoint.sh
build_image localhost/tickets-nginx:local deploy/local/nginx.Containerfile deploy/local/nginx-entrypoint.sh
build_image localhost/tickets-prometheus:local deploy/local/prometheus.Containerfile
echo "images ready in $((SECONDS - started)) s"
