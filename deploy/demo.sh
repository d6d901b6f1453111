#!/usr/bin/env bash
# make demo: three simulated vehicles, three edge agents and the cloud server on
# this machine, against the local PostgreSQL, Redis and Mosquitto (make demo
# runs deploy/setup.sh first). Runs until interrupted: Ctrl-C stops every
# program in order and exits 0. Everything it writes goes under $DEMO_DIR (a
# temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
VEHICLES=${VEHICLES:-3}
SPEED=${SPEED:-1}
ID_PREFIX=${ID_PREFIX:-veh-}             # vehicle ids: ${ID_PREFIX}001 ...
METRICS_PORT_BASE=${METRICS_PORT_BASE:-9100} # agent i serves /metrics on base+i
export MQTT_NAMESPACE=${MQTT_NAMESPACE:-fleet/v1}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/fleetgate?sslmode=disable}
export LISTEN_ADDR=${LISTEN_ADDR:-:8000}
API_PORT=${LISTEN_ADDR##*:}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d /tmp/fleetgate-demo.XXXXXX)}
mkdir -p "$DEMO_DIR"

say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

# The programs run in sessions of their own (setsid), so the terminal's
# Ctrl-C reaches only this script, which stops them in order and exits 0:
# none of them can exit first and make the demo look like a failure.
pids=()
TOKEN_NAME=""
# shellcheck disable=SC2317 # cleanup and interrupted run from the traps
cleanup() {
  trap - INT TERM HUP EXIT
  if [ -n "$TOKEN_NAME" ]; then
    "$BIN/cloud-server" token revoke "$TOKEN_NAME" >>"$DEMO_DIR/token.log" 2>&1 || true
  fi
  ((${#pids[@]})) || return 0
  say "stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  say "logs, outboxes and ground truth are in $DEMO_DIR"
}
# Ctrl-C is how the demo ends: stop everything and exit 0.
# shellcheck disable=SC2317
interrupted() { cleanup; exit 0; }
trap interrupted INT TERM HUP
trap cleanup EXIT

# Stop at once, naming the missing service and its start command.
if ! "$BIN/cloud-server" check; then
  say "start the missing service(s) above, then run make demo again"
  exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then
  say "port $API_PORT is already in use (another demo or cloud-server?); stop it or set LISTEN_ADDR=:8001"
  exit 1
fi

"$BIN/cloud-server" migrate >"$DEMO_DIR/migrate.log" 2>&1 || { cat "$DEMO_DIR/migrate.log"; exit 1; }
# An API token for the demo (admin: it can do everything the API offers),
# revoked when the demo stops; also in $DEMO_DIR/token.
TOKEN_NAME="demo-$(date +%Y%m%d-%H%M%S)-$$"
TOKEN=$("$BIN/cloud-server" token create --name "$TOKEN_NAME" --role admin --ttl 24h 2>"$DEMO_DIR/token.log") ||
  { cat "$DEMO_DIR/token.log"; TOKEN_NAME=""; exit 1; }
(umask 077 && printf '%s\n' "$TOKEN" >"$DEMO_DIR/token")
setsid "$BIN/cloud-server" run >"$DEMO_DIR/cloud-server.log" 2>&1 &
pids+=($!)

setsid "$BIN/firmware-sim" run --vehicles "$VEHICLES" --id-prefix "$ID_PREFIX" --speed "$SPEED" --link-dir "$DEMO_DIR/dev" \
  --truth "$DEMO_DIR/truth.jsonl" >"$DEMO_DIR/firmware-sim.log" 2>&1 &
pids+=($!)

for i in $(seq 1 "$VEHICLES"); do
  v=$(printf '%s%03d' "$ID_PREFIX" "$i")
  for dev in gps obd; do
    for _ in $(seq 1 100); do [ -e "$DEMO_DIR/dev/$v-$dev" ] && break; sleep 0.1; done
    [ -e "$DEMO_DIR/dev/$v-$dev" ] || { say "the simulator did not create $v-$dev; see $DEMO_DIR/firmware-sim.log"; exit 1; }
  done
  cat >"$DEMO_DIR/$v.yaml" <<YAML
vehicle_id: $v
data_dir: $DEMO_DIR/$v-data
gps:
  port: $DEMO_DIR/dev/$v-gps
obd:
  port: $DEMO_DIR/dev/$v-obd
  pids: ["0C", "0D", "05", "0F", "11"]
  interval: 1s
mqtt:
  url: ${MQTT_URL:-tcp://127.0.0.1:1883}
  namespace: $MQTT_NAMESPACE
uplink:
  status_interval: 10s # device health every 10 s, for the dashboard's charts
http:
  listen: 127.0.0.1:$((METRICS_PORT_BASE + i))
YAML
  setsid "$BIN/edge-agent" run --config "$DEMO_DIR/$v.yaml" >"$DEMO_DIR/edge-agent-$v.log" 2>&1 &
  pids+=($!)
done

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

say "$VEHICLES vehicles driving through Monaco; agents' metrics on 127.0.0.1:$((METRICS_PORT_BASE + 1))..$((METRICS_PORT_BASE + VEHICLES))"
say "token: $TOKEN (admin; revoked when the demo stops; also in $DEMO_DIR/token)"
say "dashboard: http://localhost:$API_PORT/  (sign in with the token)"
say "API:   curl -H \"Authorization: Bearer $TOKEN\" localhost:$API_PORT/api/v1/vehicles"
say "live:  curl -N -H \"Authorization: Bearer $TOKEN\" localhost:$API_PORT/api/v1/live"
say "docs:  http://localhost:$API_PORT/docs"
say "logs:  $DEMO_DIR"
say "Ctrl-C to stop"
wait -n "${pids[@]}" || true
say "a process exited early; see the logs in $DEMO_DIR"
exit 1
