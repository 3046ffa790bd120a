#!/bin/sh
# The part of the nginx image's entrypoint that docker-compose.yml relies on: with
# NGINX_ENTRYPOINT_LOCAL_RESOLVERS set, NGINX_LOCAL_RESOLVERS is the container's DNS servers (from
# /etc/resolv.conf), and each /etc/nginx/templates/NAME.template is written to
# $NGINX_ENVSUBST_OUTPUT_DIR/NAME with that variable filled in (the only one the stack's template uses).
set -eu
resolvers=
if [ -n "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ]; then
	resolvers=$(awk 'BEGIN { ORS = " " } $1 == "nameserver" { print ($2 ~ ":") ? "[" $2 "]" : $2 }' /etc/resolv.conf)
fi
out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
for template in /etc/nginx/templates/*.template; do
	[ -e "$template" ] || continue
	sed "s|\${NGINX_LOCAL_RESOLVERS}|$resolvers|g" "$template" >"$out/$(basename "$template" .template)"
done
exec "$@"
