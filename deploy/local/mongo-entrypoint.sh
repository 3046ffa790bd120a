#!/bin/bash
# Starts PostgreSQL (creating its cluster and the root user on the first start, with an empty
# /data/db), then FerretDB in front of it on 27017. SIGTERM stops both cleanly.
set -euo pipefail
PG=/usr/lib/postgresql/15/bin
DATA=/data/db/postgresql
user=${MONGO_INITDB_ROOT_USERNAME:?MONGO_INITDB_ROOT_USERNAME is required}
password=${MONGO_INITDB_ROOT_PASSWORD:?MONGO_INITDB_ROOT_PASSWORD is required}

mkdir -p "$DATA" /run/postgresql
chown postgres:postgres "$DATA" /run/postgresql
chmod 0700 "$DATA"
as_postgres() { runuser -u postgres -- "$@"; }

if [ ! -s "$DATA/PG_VERSION" ]; then
	as_postgres "$PG/initdb" -D "$DATA" --encoding=UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
	as_postgres "$PG/pg_ctl" -D "$DATA" -o "-c listen_addresses=''" -w start >/dev/null
	# The password goes in as a literal; psql's :'var' quoting keeps it one.
	as_postgres psql -v ON_ERROR_STOP=1 -q -v user="$user" -v password="$password" <<-'SQL'
		CREATE ROLE :"user" LOGIN SUPERUSER PASSWORD :'password';
		CREATE DATABASE ferretdb OWNER :"user";
	SQL
	as_postgres "$PG/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
fi

as_postgres "$PG/pg_ctl" -D "$DATA" -o "-c listen_addresses=127.0.0.1" -l "$DATA/server.log" -w start >/dev/null
ferretdb --handler=pg --postgresql-url=postgres://127.0.0.1:5432/ferretdb --listen-addr=:27017 \
	--debug-addr=127.0.0.1:8088 --telemetry=disable --log-level=warn &
ferret=$!
stop() {
	kill -TERM "$ferret" 2>/dev/null || true
	wait "$ferret" || true
	as_postgres "$PG/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
	exit 0
}
trap stop TERM INT
status=0
wait "$ferret" || status=$?
as_postgres "$PG/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
exit "$status"
