#!/bin/sh
# osrm-prepare (docker-compose*.yml): turn the extract into an OSRM dataset
# for the multi-level Dijkstra algorithm (MLD: extract, partition,
# customize), once. Runs in the osrm-backend image, without network.
#   OSRM_NAME     the dataset (default monaco): reads NAME.osm.pbf
#   OSRM_DATA     the volume (default /data)
#   OSRM_PROFILE  the routing profile (default /opt/car.lua, in the image)
set -eu
name=${OSRM_NAME:-monaco}
data=${OSRM_DATA:-/data}
profile=${OSRM_PROFILE:-/opt/car.lua}
pbf=$data/$name.osm.pbf
done_marker=$data/$name.prepared

if [ -f "$done_marker" ]; then
  echo "osrm-prepare: $data/$name.osrm is already prepared"
  exit 0
fi
if [ ! -s "$pbf" ]; then
  echo "osrm-prepare: $pbf is missing; osrm-fetch should have downloaded it" >&2
  exit 1
fi
osrm-extract -p "$profile" "$pbf"
osrm-partition "$data/$name.osrm"
osrm-customize "$data/$name.osrm"
touch "$done_marker"
echo "osrm-prepare: $data/$name.osrm ready (MLD)"
