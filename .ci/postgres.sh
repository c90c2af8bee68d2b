#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: `.ci/postgres.sh cargo test --workspace`.
#
# Installs PostgreSQL from the Debian packages when it is missing (as root), starts a fresh cluster
# in a temporary directory as the unprivileged `postgres` user (as the current user when not root),
# listening on 127.0.0.1 only on a free local port, exports LICENSEKIT_TEST_POSTGRES_URL for the
# command, and stops the server and deletes the directory when the command ends, whatever happens.
# Without PostgreSQL the command runs anyway (its PostgreSQL tests are skipped), except under
# CI=true, where that is a failure.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

bin=$(find_bin)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
  echo "postgres.sh: PostgreSQL not found, installing it from the Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql > /dev/null || true
  bin=$(find_bin)
fi
if [ -z "$bin" ]; then
  if [ "${CI:-}" = true ]; then
    echo "postgres.sh: PostgreSQL is missing and could not be installed; CI needs it" >&2
    exit 1
  fi
  echo "postgres.sh: no PostgreSQL here; running without it (its tests are skipped)" >&2
  exec "$@"
fi

dir=$(mktemp -d /tmp/licensekit-pg.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
# Run PostgreSQL's tools from inside the temp dir (the caller's may be unreadable to postgres).
pg() { (cd "$dir" && "${as_owner[@]}" "$@"); }

stop() {
  pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync > "$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}

started=
for _ in 1 2 3 4 5; do
  port=${LICENSEKIT_PG_PORT:-$((20000 + RANDOM % 20000))}
  if pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -k $dir -h 127.0.0.1 -c fsync=off -c max_connections=200" > /dev/null; then
    started=1
    break
  fi
  [ -n "${LICENSEKIT_PG_PORT:-}" ] && break
done
if [ -z "$started" ]; then
  echo "postgres.sh: the server did not start:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

export LICENSEKIT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on $LICENSEKIT_TEST_POSTGRES_URL" >&2
status=0
"$@" || status=$?
exit "$status"
