#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 for the tests: start them, or install them on Debian.
# Prints an `export TG_TEST_PG_DSN=...` line when it had to set up PostgreSQL itself.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || $SUDO pg_ctlcluster "$ver" main start
  for _ in $(seq 30); do pg_up && break; sleep 1; done
  # A fresh Debian cluster asks for a password over TCP: give the postgres role one for the tests.
  $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'tongguan-test'" >/dev/null 2>&1 || \
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'tongguan-test'\"" >/dev/null
  echo "export TG_TEST_PG_DSN=postgresql://postgres:tongguan-test@127.0.0.1:5432/postgres"
fi
if ! redis_up; then
  command -v redis-server >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null; }
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 30); do redis_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
redis_up || { echo "Redis did not start" >&2; exit 1; }
