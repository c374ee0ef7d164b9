#!/usr/bin/env bash
# Starts Ceph's RADOS Gateway on 127.0.0.1 for the tests: a real S3 that checks SigV4 signatures,
# honours If-None-Match and aborts multipart uploads. One monitor, one OSD on the memstore object
# store (its data lives in RAM: keep test data small), radosgw's beast frontend, cephx, pools of
# size 1, and a user with the test keys. Everything they write is in one state folder, so nothing
# in /etc is used or changed and Stop-Rgw.sh removes it all.
#
#   eval "$(tests/s3/Start-Rgw.sh)"      # exports GRID_TEST_RGW_ENDPOINT (and GRID_RGW_DIR)
#   tests/s3/Stop-Rgw.sh
#
# Messages go to stderr; stdout holds only the export lines. Run as root. Installs Debian's
# ceph-mon, ceph-osd, radosgw and ceph-common when missing (apt-get install --no-install-recommends).
#
# Environment:
#   GRID_RGW_DIR        the state folder (default ${TMPDIR:-/tmp}/grid-rgw)
#   GRID_RGW_PORT       radosgw's port (default: a free one)
#   GRID_RGW_MEMORY     bytes the memstore OSD may hold (default 2 GiB)
#   GRID_RGW_TIMEOUT    seconds to wait for each daemon (default 90)
set -euo pipefail

DIR="${GRID_RGW_DIR:-${TMPDIR:-/tmp}/grid-rgw}"
MEMORY="${GRID_RGW_MEMORY:-2147483648}"
TIMEOUT="${GRID_RGW_TIMEOUT:-90}"
# The test identity the S3 tests use (it is s3rver's fixed pair, not a secret).
KEY=S3RVER

say() { echo "Start-Rgw: $*" >&2; }
die() { echo "Start-Rgw: error: $*" >&2; [[ -d "$DIR/log" ]] && tail -n 20 "$DIR"/log/*.log >&2 2>/dev/null; exit 1; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # what, command...
    local what=$1; shift
    local until=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < until)) || die "$what did not come up in $TIMEOUT s."
        sleep 0.5
    done
}

[[ $(id -u) -eq 0 ]] || die "run as root (the daemons and their state folder)."
START=$SECONDS

# --- Packages -----------------------------------------------------------------------------------
need=()
for exe in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    command -v "$exe" >/dev/null 2>&1 || need+=("$exe")
done
if ((${#need[@]})); then
    say "installing ceph-mon, ceph-osd, radosgw and ceph-common (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(ceph-mon ceph-osd radosgw ceph-common)
    # A clean machine may have no package lists yet: update only when the first try fails.
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
        apt-get update >&2 || die "apt-get update failed."
        apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 || die "apt-get install ${pkgs[*]} failed."
    fi
fi

# --- Already running? ----------------------------------------------------------------------------
if alive "$DIR/run/radosgw.pid" && [[ -f "$DIR/endpoint" ]]; then
    say "already running at $(cat "$DIR/endpoint")"
    printf 'export GRID_TEST_RGW_ENDPOINT=%q\nexport GRID_RGW_DIR=%q\n' "$(cat "$DIR/endpoint")" "$DIR"
    exit 0
fi
[[ -e "$DIR" ]] && die "$DIR exists but its radosgw is not running: run tests/s3/Stop-Rgw.sh first."

# --- Configuration -------------------------------------------------------------------------------
mkdir -p "$DIR"/{run,log,mon,osd}
chmod 700 "$DIR"
MON_PORT=$(free_port)
RGW_PORT="${GRID_RGW_PORT:-$(free_port)}"
FSID=$(cat /proc/sys/kernel/random/uuid)
CONF="$DIR/ceph.conf"
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $MEMORY
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[osd]
keyring = $DIR/osd/\$cluster-\$id/keyring
[client.rgw.grid]
keyring = $DIR/rgw/keyring
# tcp_nodelay: without it a small answer sent in two writes waits out the client's delayed ACK
# (about 40 ms a GET on loopback), which only makes the tests slower.
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
EOF

# --- Monitor -------------------------------------------------------------------------------------
ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >&2
ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >&2
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$DIR/monmap" >&2
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >&2
ceph-mon -c "$CONF" -i a >&2
wait_for "ceph-mon" timeout 5 ceph -c "$CONF" mon stat
say "monitor up on 127.0.0.1:$MON_PORT after $((SECONDS - START)) s"

# --- OSD (memstore) ------------------------------------------------------------------------------
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
mkdir -p "$DIR/osd/ceph-$OSD_ID"
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --mkkey --no-mon-config --osd-uuid "$OSD_UUID" >&2
ceph -c "$CONF" auth add "osd.$OSD_ID" osd 'allow *' mon 'allow profile osd' -i "$DIR/osd/ceph-$OSD_ID/keyring" >&2
ceph-osd -c "$CONF" -i "$OSD_ID" >&2
wait_for "ceph-osd" sh -c "ceph -c '$CONF' osd stat | grep -q '1 up'"
say "OSD up after $((SECONDS - START)) s"

# --- radosgw -------------------------------------------------------------------------------------
mkdir -p "$DIR/rgw"
ceph -c "$CONF" auth get-or-create client.rgw.grid mon 'allow rw' osd 'allow rwx' -o "$DIR/rgw/keyring" >&2
radosgw -c "$CONF" -n client.rgw.grid >&2
wait_for "radosgw" timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RGW_PORT"
# The user with the test keys (they are not secrets: the S3 tests use them against s3rver too).
radosgw-admin -c "$CONF" user create --uid=grid --display-name=grid --access-key="$KEY" --secret-key="$KEY" >/dev/null
echo "http://127.0.0.1:$RGW_PORT" > "$DIR/endpoint"
say "radosgw up on http://127.0.0.1:$RGW_PORT after $((SECONDS - START)) s"
printf 'export GRID_TEST_RGW_ENDPOINT=%q\nexport GRID_RGW_DIR=%q\n' "http://127.0.0.1:$RGW_PORT" "$DIR"
