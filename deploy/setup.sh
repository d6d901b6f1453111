#!/usr/bin/env bash
# deploy/setup.sh: everything `make test` and `make demo` need on a Debian or
# Ubuntu machine that has Go. It installs the missing Debian packages
# (as root, or through sudo; otherwise it stops and prints the command to
# run), then starts PostgreSQL, Redis and Mosquitto on localhost when they
# are not answering. It changes nothing that is already there, so running it
# before every `make test` costs a second.
#
#   deploy/setup.sh           the tests' and the demo's tools and services
#   deploy/setup.sh --lint    also the linters `make lint` runs (shellcheck, caddy)
#   deploy/setup.sh --arm     also qemu-user-static, for `make test-arm`
#   deploy/setup.sh --check   install nothing, start nothing: exit 1 naming what is missing
#
# The services are the ones the tests and the demo use by default:
# PostgreSQL on 127.0.0.1:5432 (user postgres, no password), Redis on
# 127.0.0.1:6379, Mosquitto on 127.0.0.1:1883 (anonymous, local only).
set -euo pipefail

lint=0 arm=0 check=0
for arg in "$@"; do
  case $arg in
    --lint) lint=1 ;;
    --arm) arm=1 ;;
    --check) check=1 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument $arg (--lint, --arm, --check)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*"; }

# as_root runs a command as root: directly, or through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

can_be_root() { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; }

# ---- packages -----------------------------------------------------------------

# command → Debian package. What the tests call: the database, cache and
# broker with their clients, gpsd's gpsdecode (the independent NMEA decoder),
# openssl (test certificates), systemd-analyze and systemd-sysusers (the unit
# checks), make and curl (the demo), Chromium (the dashboard's browser tests
# and benchmark).
tools=(
  psql:postgresql-client pg_ctlcluster:postgresql redis-server:redis-server
  mosquitto:mosquitto mosquitto_sub:mosquitto-clients gpsdecode:gpsd-clients
  openssl:openssl systemd-analyze:systemd systemd-sysusers:systemd make:make curl:curl
  chromium:chromium
)
((lint)) && tools+=(shellcheck:shellcheck caddy:caddy)
((arm)) && tools+=(qemu-aarch64-static:qemu-user-static qemu-arm-static:qemu-user-static)

missing=()
for entry in "${tools[@]}"; do
  cmd=${entry%%:*} pkg=${entry#*:}
  # pg_ctlcluster and the daemons live outside a normal user's PATH.
  if ! command -v "$cmd" >/dev/null && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
if ! command -v go >/dev/null; then
  say "Go is not on PATH: install Go 1.26 (https://go.dev/doc/install), then run this again"
  exit 1
fi

if ((${#missing[@]})); then
  install="apt-get install -y --no-install-recommends ${missing[*]}"
  if ((check)); then
    say "missing: ${missing[*]}; install them with: sudo $install"
    exit 1
  fi
  if ! command -v apt-get >/dev/null || ! can_be_root; then
    say "missing packages: ${missing[*]}"
    say "install them as root, then run this again:"
    say "  sudo apt-get update && sudo $install"
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || {
      say "the installation failed; run it by hand to see why:"
      say "  sudo apt-get update && sudo $install"
      exit 1
    }
  fi
fi

# ---- services -----------------------------------------------------------------

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port
  for _ in $(seq 1 100); do tcp_open "$2" && return 0; sleep 0.1; done
  say "$1 did not come up on 127.0.0.1:$2"
  exit 1
}

# start name port command...: run the command as root unless the port answers.
start() {
  local name=$1 port=$2
  shift 2
  tcp_open "$port" && return 0
  if ((check)); then
    say "$name is not running on 127.0.0.1:$port; start it with: sudo $*"
    exit 1
  fi
  if ! can_be_root; then
    say "$name is not running on 127.0.0.1:$port; start it as root with:"
    say "  $*"
    exit 1
  fi
  say "starting $name"
  as_root "$@"
  wait_port "$name" "$port"
}

pg_version() {
  local v
  v=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -1)
  [ -n "$v" ] || { say "no PostgreSQL cluster in /etc/postgresql: reinstall the postgresql package"; exit 1; }
  echo "$v"
}
if ! tcp_open 5432; then
  start PostgreSQL 5432 pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
fi

# The tests and the demo connect as postgres without a password. Debian's
# default asks for one over TCP; allow it from this machine only.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
  hba=/etc/postgresql/$(pg_version)/main/pg_hba.conf
  if ((check)) || ! can_be_root; then
    say "PostgreSQL refuses user postgres without a password on 127.0.0.1; as root, add to the top of $hba:"
    say "  host all postgres 127.0.0.1/32 trust"
    say "  host all postgres ::1/128 trust"
    say "then: pg_ctlcluster $(pg_version) main reload"
    exit 1
  fi
  say "letting user postgres connect from 127.0.0.1 and ::1 without a password ($hba)"
  as_root sed -i '1i # deploy/setup.sh: tests and the demo connect as postgres from this machine\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main reload
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null || { say "PostgreSQL still refuses user postgres"; exit 1; }
fi

start Redis 6379 bash -c 'mkdir -p /var/lib/redis /var/log/redis &&
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/fleetgate.log'

start Mosquitto 1883 bash -c 'mkdir -p /run/mosquitto && { chown mosquitto /run/mosquitto 2>/dev/null || true; } &&
  mosquitto -d -c /etc/mosquitto/mosquitto.conf'

((check)) || say "ready: PostgreSQL :5432, Redis :6379, Mosquitto :1883"
