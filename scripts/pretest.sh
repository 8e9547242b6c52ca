#!/usr/bin/env bash
# Prepares what `npm test` needs (run by npm as the `pretest` script, and by .ci/run
# through `npm test`): PostgreSQL with a database "test" for the delivery tests, and the
# programs other tests start themselves on free ports (nats-server, redis-server),
# drive (chromium) or load with (wrk). Missing programs are installed with apt-get when
# running as root; elsewhere this prints what to install, and the tests that need a
# missing program skip with the same message. It never fails the test run by itself.
set -u

packages_for_missing=()
want() { # want COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] ||
    packages_for_missing+=("$2")
}
want chromium chromium
want nats-server nats-server
want redis-server redis-server
want wrk wrk
command -v pg_ctlcluster >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 ||
  packages_for_missing+=(postgresql postgresql-client)

if [ ${#packages_for_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "pretest: installing ${packages_for_missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || echo "pretest: apt-get update failed" >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${packages_for_missing[@]}" >/dev/null ||
      echo "pretest: apt-get install ${packages_for_missing[*]} failed" >&2
  else
    echo "pretest: missing ${packages_for_missing[*]}: install them (Debian/Ubuntu:" \
      "apt-get install -y ${packages_for_missing[*]}); the tests that need them skip" >&2
  fi
fi

# PostgreSQL on 127.0.0.1:5432 with a database "test", reachable as
# postgres://postgres:postgres@127.0.0.1:5432/test (the default SLUICE_TEST_PG).
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if pg_up; then
  if [ -z "${SLUICE_TEST_PG:-}" ] &&
    ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1 &&
    [ "$(id -u)" = 0 ]; then
    # A fresh install asks for a password over TCP: give the postgres role one.
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1
    su postgres -c "createdb test" >/dev/null 2>&1 || true
  fi
else
  echo "pretest: PostgreSQL is not running on 127.0.0.1:5432 (set SLUICE_TEST_PG to a" \
    "database URL, or install postgresql); the PostgreSQL tests will fail" >&2
fi
exit 0
