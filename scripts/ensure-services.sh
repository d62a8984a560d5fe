#!/usr/bin/env bash
# Make sure the services the test suite talks to answer on 127.0.0.1, as they do on our machines:
# PostgreSQL on 5432 (user postgres, trust auth) and, when asked for, Redis on 6379.
# Where one does not answer, install it from Debian's packages and start it. Never skips silently:
# a service that cannot be had is an error.
#
#   scripts/ensure-services.sh postgres [redis]
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() { "$(dirname "$0")/apt-install.sh" "$@"; }

postgres_answers() {
  command -v psql >/dev/null && psql -h 127.0.0.1 -p 5432 -U postgres -tAc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  # pg_dump and pg_restore: manage.py backup and restore use them (and psql, below, comes with them).
  command -v pg_dump >/dev/null || apt_install postgresql-client
  postgres_answers && return 0
  echo "PostgreSQL does not answer on 127.0.0.1:5432: installing and starting it"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version hba
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # The suite connects over TCP as postgres without a password, as on our machines.
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 30); do postgres_answers && return 0; sleep 1; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

redis_answers() {
  command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
}

ensure_redis() {
  redis_answers && return 0
  echo "Redis does not answer on 127.0.0.1:6379: installing and starting it"
  command -v redis-server >/dev/null || apt_install redis-server
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis_answers && return 0; sleep 1; done
  echo "Redis did not come up on 127.0.0.1:6379" >&2
  return 1
}

for service in "$@"; do
  case "$service" in
    postgres) ensure_postgres ;;
    redis) ensure_redis ;;
    *) echo "unknown service: $service" >&2; exit 2 ;;
  esac
done
