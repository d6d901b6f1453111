#!/usr/bin/env bash
# The health check of the osrm service (docker-compose*.yml): the image has
# bash but no curl, so ask osrm-routed for the nearest road to a point in
# Monaco over /dev/tcp and expect {"code":"Ok",...}.
#   healthcheck.sh [HOST [PORT [LON,LAT]]]   (default 127.0.0.1 5000 7.4246,43.7384)
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-5000}
point=${3:-7.4246,43.7384}
exec 3<>"/dev/tcp/$host/$port"
printf 'GET /nearest/v1/driving/%s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$point" "$host" >&3
reply=$(cat <&3)
exec 3<&-
case $reply in
  "HTTP/1."?" 200 "*'"code":"Ok"'*) exit 0 ;;
esac
printf 'osrm healthcheck: unexpected reply: %.200s\n' "$reply" >&2
exit 1
