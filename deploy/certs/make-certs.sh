#!/usr/bin/env bash
# make-certs.sh: a small certificate authority for Fleetgate's MQTT broker, with
# openssl. It makes the CA, the broker's server certificate, the cloud's client
# certificate and one client certificate per vehicle, keeps the CA's database
# (index.txt) and publishes a certificate revocation list (crl.pem).
#
# The broker takes the certificate's common name as the MQTT username
# (use_identity_as_username) and its ACL lets a vehicle named N write only
# fleet/v1/N/up/# and read only fleet/v1/N/down/#. So the CN IS the identity:
# a vehicle certificate's CN is the vehicle id; the cloud's is fleetgate.cloud,
# which no vehicle id can be (a vehicle id has no dot).
#
# Usage: make-certs.sh [-o DIR] COMMAND [ARGS]
#   ca                      make the CA (refuses to replace one) and an empty CRL
#   server NAME [NAME...]   the broker's certificate; each NAME (DNS name or IP
#                           address) goes in subjectAltName, the first is the CN
#   cloud [NAME]            the cloud's client certificate (CN fleetgate.cloud)
#   vehicle ID [ID...]      one client certificate per vehicle: vehicles/ID.{crt,key}
#   renew FILE.crt          rotate a client certificate: the current pair is kept
#                           as FILE.old.crt/.old.key (still valid: revoke it once
#                           the new one is installed) and a new key and
#                           certificate with the same CN take its place
#   revoke FILE.crt         revoke a certificate, publish a new CRL, and rename the
#                           pair to FILE.revoked-<serial>.crt/.key
#   crl                     publish the CRL again (do it before it expires: CRL_DAYS)
#   dev                     everything a development stack needs: ca, server
#                           (localhost, 127.0.0.1, mosquitto), cloud, veh-001..003
#
# Options and environment:
#   -o DIR      output directory (default: $CERTS_DIR or deploy/certs/dev)
#   DAYS        validity of leaf certificates in days (default 397)
#   CA_DAYS     validity of the CA (default 3650)
#   CRL_DAYS    validity of each CRL (default 90); the broker refuses every
#               client once its CRL has expired, so publish a new one in time
#
# Output: DIR/ca.crt ca.key crl.pem server.{crt,key} cloud.{crt,key}
# vehicles/<id>.{crt,key}; DIR/ca-db/ is the CA's database. Keys are ECDSA
# P-256, mode 0600. In production, keep ca.key offline: the broker needs only
# ca.crt, crl.pem, server.crt and server.key.
set -euo pipefail

die() { echo "make-certs: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; exit 2; }

OUT=${CERTS_DIR:-deploy/certs/dev}
while getopts "o:h" opt; do
  case $opt in
    o) OUT=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
cmd=$1; shift

DAYS=${DAYS:-397}
CA_DAYS=${CA_DAYS:-3650}
CRL_DAYS=${CRL_DAYS:-90}
CLOUD_CN=fleetgate.cloud
VEHICLE_ID_RE='^[A-Za-z0-9_-]{1,64}$' # shared/telemetry.ValidVehicleID
export FLEETGATE_SAN=DNS:unused # openssl.cnf reads it; only server certificates use it

command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
umask 077
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DB=$OUT/ca-db
CNF=$DB/openssl.cnf

write_cnf() {
  cat >"$CNF" <<CNF
# Written by make-certs.sh; the CA's settings.
[ ca ]
default_ca = fleetgate_ca
[ fleetgate_ca ]
dir              = $DB
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
serial           = \$dir/serial
crlnumber        = \$dir/crlnumber
certificate      = $OUT/ca.crt
private_key      = $OUT/ca.key
default_md       = sha256
default_days     = $DAYS
default_crl_days = $CRL_DAYS
policy           = policy_cn
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
[ policy_cn ]
organizationName = optional
commonName       = supplied
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = unused
[ ext_ca ]
basicConstraints       = critical, CA:true, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ ext_server ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = \${ENV::FLEETGATE_SAN}
[ ext_client ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
CNF
}

need_ca() {
  if [ ! -f "$OUT/ca.key" ] || [ ! -f "$OUT/ca.crt" ]; then
    die "no CA in $OUT: run '$0 -o $OUT ca' first"
  fi
}

# issue NAME_PATH CN EXT: a new key and a certificate signed by the CA.
issue() {
  local base=$1 cn=$2 ext=$3
  [ -e "$base.crt" ] && die "$base.crt exists; to replace it: renew $base.crt (rotation) or revoke $base.crt"
  mkdir -p "$(dirname "$base")"
  openssl ecparam -name prime256v1 -genkey -noout -out "$base.key" 2>/dev/null
  openssl req -new -key "$base.key" -subj "/O=Fleetgate/CN=$cn" -out "$base.csr"
  openssl ca -batch -config "$CNF" -extensions "$ext" \
    -in "$base.csr" -out "$base.crt" -notext 2>"$base.log" || { cat "$base.log" >&2; rm -f "$base.key" "$base.csr"; exit 1; }
  rm -f "$base.csr" "$base.log"
  chmod 600 "$base.key"
  chmod 644 "$base.crt"
  echo "issued $base.crt (CN=$cn)"
}

gencrl() {
  openssl ca -config "$CNF" -gencrl -out "$OUT/crl.pem" 2>"$DB/crl.log" || { cat "$DB/crl.log" >&2; exit 1; }
  rm -f "$DB/crl.log"
  chmod 644 "$OUT/crl.pem"
  echo "published $OUT/crl.pem (valid $CRL_DAYS days)"
}

do_ca() {
  [ -e "$OUT/ca.key" ] && die "$OUT/ca.key exists; refusing to replace the CA (every certificate depends on it)"
  mkdir -p "$DB/newcerts"
  : >"$DB/index.txt"
  openssl rand -hex 16 >"$DB/serial"
  echo 1000 >"$DB/crlnumber"
  write_cnf
  openssl ecparam -name prime256v1 -genkey -noout -out "$OUT/ca.key" 2>/dev/null
  openssl req -new -x509 -config "$CNF" -extensions ext_ca -key "$OUT/ca.key" -days "$CA_DAYS" \
    -subj "/O=Fleetgate/CN=Fleetgate MQTT CA" -out "$OUT/ca.crt"
  chmod 600 "$OUT/ca.key"
  chmod 644 "$OUT/ca.crt"
  echo "made the CA: $OUT/ca.crt"
  gencrl
}

do_server() {
  [ $# -ge 1 ] || die "server: name the broker (DNS names or IP addresses)"
  need_ca; write_cnf
  local san="" n
  for n in "$@"; do
    if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="${san:+,}IP:$n"; else san+="${san:+,}DNS:$n"; fi
  done
  FLEETGATE_SAN=$san
  issue "$OUT/server" "$1" ext_server
}

do_cloud() {
  need_ca; write_cnf
  issue "$OUT/cloud" "${1:-$CLOUD_CN}" ext_client
}

do_vehicle() {
  [ $# -ge 1 ] || die "vehicle: name at least one vehicle id"
  need_ca; write_cnf
  local id
  for id in "$@"; do
    [[ $id =~ $VEHICLE_ID_RE ]] || die "vehicle id $id: want 1 to 64 of A-Z a-z 0-9 _ -"
  done
  for id in "$@"; do issue "$OUT/vehicles/$id" "$id" ext_client; done
}

do_renew() {
  [ $# -eq 1 ] || die "renew: name one certificate file"
  need_ca; write_cnf
  local crt=$1 base=${1%.crt} cn
  [ -f "$crt" ] || die "renew: $crt: no such file"
  openssl x509 -in "$crt" -noout -ext extendedKeyUsage | grep -q 'Client Authentication' ||
    die "renew: $crt is not a client certificate (make a new server certificate with: server NAME...)"
  cn=$(openssl x509 -in "$crt" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
  [ -e "$base.old.crt" ] && die "renew: $base.old.crt exists; revoke it (revoke $base.old.crt) before renewing again"
  mv "$crt" "$base.old.crt"
  mv "$base.key" "$base.old.key"
  issue "$base" "$cn" ext_client
  echo "the previous certificate is $base.old.crt; revoke it once $base.crt is installed"
}

do_revoke() {
  [ $# -eq 1 ] || die "revoke: name one certificate file"
  need_ca; write_cnf
  local crt=$1 base=${1%.crt} serial
  [ -f "$crt" ] || die "revoke: $crt: no such file"
  serial=$(openssl x509 -in "$crt" -noout -serial | cut -d= -f2)
  openssl ca -config "$CNF" -revoke "$crt" 2>"$DB/revoke.log" || { cat "$DB/revoke.log" >&2; exit 1; }
  rm -f "$DB/revoke.log"
  mv "$crt" "$base.revoked-$serial.crt"
  [ -f "$base.key" ] && mv "$base.key" "$base.revoked-$serial.key"
  echo "revoked $crt (serial $serial)"
  gencrl
}

case $cmd in
  ca) do_ca ;;
  server) do_server "$@" ;;
  cloud) do_cloud "$@" ;;
  vehicle) do_vehicle "$@" ;;
  renew) do_renew "$@" ;;
  revoke) do_revoke "$@" ;;
  crl) need_ca; write_cnf; gencrl ;;
  dev)
    [ -e "$OUT/ca.key" ] || do_ca
    [ -e "$OUT/server.crt" ] || do_server localhost 127.0.0.1 mosquitto
    [ -e "$OUT/cloud.crt" ] || do_cloud
    for v in veh-001 veh-002 veh-003; do [ -e "$OUT/vehicles/$v.crt" ] || do_vehicle "$v"; done
    ;;
  *) usage ;;
esac
