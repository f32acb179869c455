#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: initdb in a temp
# directory, a free loopback port, trust authentication for the user
# `passgate`; the command sees its URL in PASSGATE_TEST_POSTGRES. The
# cluster is stopped and removed when the command ends, whatever its exit.
#
#   tools/with-postgres.sh cargo test --all-targets
#
# Needs Debian's postgresql (`make tools-postgres` installs it).
# PASSGATE_PG_FSYNC=on keeps the cluster durable (the benchmark: a commit
# costs its fsync, as in production); tests run with fsync off.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed: make tools-postgres" >&2; exit 1; }

dir=$(mktemp -d /tmp/passgate-pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb and the server refuse to run as root: as root, run them as postgres.
as_owner() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi

stop() {
  as_owner "'$bin/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

as_owner "'$bin/initdb' -D '$dir/data' -A trust -U passgate --no-sync" >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# Durability off unless asked: a test cluster is thrown away; the tests
# measure logic, not disks.
fsync=${PASSGATE_PG_FSYNC:-off}
as_owner "'$bin/pg_ctl' -D '$dir/data' -w -l '$dir/log' -o \"-k '$dir' -p $port -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=300\" start" >/dev/null \
  || { cat "$dir/log" >&2; exit 1; }

export PASSGATE_TEST_POSTGRES="postgres://passgate@127.0.0.1:$port/postgres"
echo "PostgreSQL test cluster on 127.0.0.1:$port" >&2
"$@"
