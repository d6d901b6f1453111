#!/bin/sh
# osrm-fetch (docker-compose*.yml): download the OpenStreetMap extract once
# into the OSRM data volume, verified against the publisher's MD5 file when
# there is one. Runs in the curl image (busybox sh, curl, md5sum).
#   OSRM_PBF_URL  the extract (default: Geofabrik's Monaco, a few hundred kB)
#   OSRM_NAME     the name of the dataset in the volume (default monaco)
#   OSRM_DATA     the volume (default /data)
set -eu
url=${OSRM_PBF_URL:-https://download.geofabrik.de/europe/monaco-latest.osm.pbf}
name=${OSRM_NAME:-monaco}
data=${OSRM_DATA:-/data}
pbf=$data/$name.osm.pbf

if [ -s "$pbf" ]; then
  echo "osrm-fetch: $pbf is already there"
  exit 0
fi
echo "osrm-fetch: downloading $url"
rm -f "$pbf.part" "$pbf.md5"
curl -fsSL --retry 5 --retry-delay 5 -o "$pbf.part" "$url"
if curl -fsSL --retry 3 -o "$pbf.md5" "$url.md5"; then
  want=$(cut -d' ' -f1 "$pbf.md5")
  have=$(md5sum "$pbf.part" | cut -d' ' -f1)
  if [ "$want" != "$have" ]; then
    echo "osrm-fetch: MD5 mismatch for $url: published $want, downloaded $have" >&2
    rm -f "$pbf.part" "$pbf.md5"
    exit 1
  fi
  echo "osrm-fetch: MD5 $have verified"
else
  echo "osrm-fetch: no MD5 published at $url.md5; not verified" >&2
fi
rm -f "$pbf.md5"
mv "$pbf.part" "$pbf"
echo "osrm-fetch: $pbf ready"
