#!/usr/bin/env bash
# Services for the heavy tests: PostgreSQL on 127.0.0.1 and Debian's Chromium for Playwright.
#
# Run as root on Debian 12.  Idempotent and fast when everything is already there.
# Writes the test database URL to .ci/services.env (sourced by .ci/run) and prints it:
#     export TRIAGE_TEST_PG_URL=postgresql://triage:triage@127.0.0.1:5432/triage_test
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="${TRIAGE_SERVICES_ENV:-$here/services.env}"
pg_user=triage
pg_pass=triage
pg_db=triage_test
pg_port="${TRIAGE_PG_PORT:-5432}"

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  echo "services.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
  }
fi

# The newest installed cluster (Debian 12: 15/main); create one if the package made none.
read -r ver cluster < <(pg_lsclusters -h 2>/dev/null | sort -V | tail -n1 | awk '{print $1, $2}') || true
if [ -z "${ver:-}" ]; then
  ver="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
  cluster=main
  pg_createcluster "$ver" "$cluster" --port "$pg_port" >/dev/null
fi
port="$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $3}')"
status="$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $4}')"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$ver" "$cluster" start
fi

# Wait until it accepts connections (a few seconds at most).
for _ in $(seq 1 50); do
  if su postgres -c "psql -p $port -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 0.2
done

psql_admin() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtA $*"; }
if [ "$(psql_admin "-c \"select 1 from pg_roles where rolname='$pg_user'\"")" != "1" ]; then
  psql_admin "-c \"create role $pg_user login password '$pg_pass'\""
fi
if [ "$(psql_admin "-c \"select 1 from pg_database where datname='$pg_db'\"")" != "1" ]; then
  psql_admin "-c \"create database $pg_db owner $pg_user encoding 'UTF8' template template0\""
fi

url="postgresql://$pg_user:$pg_pass@127.0.0.1:$port/$pg_db"
# Check the URL really works over TCP with password authentication.
PGPASSWORD="$pg_pass" psql "$url" -qtAc 'select 1' >/dev/null

echo "export TRIAGE_TEST_PG_URL=$url" > "$env_file"
echo "export TRIAGE_TEST_PG_URL=$url"
