#!/usr/bin/env bash
# Stops what tests/s3/Start-Rgw.sh started (radosgw, the OSD, the monitor: by the pid files in its
# state folder, nothing else) and removes that folder, with the OSD's data.
set -uo pipefail
DIR="${GRID_RGW_DIR:-${TMPDIR:-/tmp}/grid-rgw}"
say() { echo "Stop-Rgw: $*" >&2; }
[[ -d "$DIR" ]] || { say "nothing to stop ($DIR does not exist)"; exit 0; }
for pidfile in "$DIR"/run/client.rgw.grid.pid "$DIR"/run/osd.*.pid "$DIR"/run/mon.a.pid; do
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        say "stopped $(basename "$pidfile" .pid) ($pid)"
    fi
done
rm -rf "$DIR"
say "removed $DIR"
