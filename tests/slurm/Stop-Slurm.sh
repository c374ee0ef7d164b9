#!/usr/bin/env bash
# Stops what tests/slurm/Start-Slurm.sh started (jobs, slurmd, slurmctld, munged, by the pids in its
# state folder) and removes the folder. Harmless when nothing runs.
#   GRID_SLURM_DIR  the state folder (default ${TMPDIR:-/tmp}/grid-slurm)
set -uo pipefail

DIR="${GRID_SLURM_DIR:-${TMPDIR:-/tmp}/grid-slurm}"
export PATH="$PATH:/usr/sbin:/sbin"
say() { echo "Stop-Slurm: $*" >&2; }

if [[ ! -d "$DIR" ]]; then
    say "nothing to stop ($DIR does not exist)"
    exit 0
fi
if [[ -f "$DIR/slurm.conf" ]] && [[ -f "$DIR/slurmctld.pid" ]] && command -v scancel >/dev/null; then
    # Jobs first, so slurmd does not leave their processes behind.
    SLURM_CONF="$DIR/slurm.conf" timeout 10 scancel --full --quiet --user=root 2>/dev/null || true
fi

# Stops one daemon by its pid file: SIGTERM, up to 10 s, then SIGKILL. Only that pid is signalled.
stop() {
    local name="$1" pidfile="$2" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { say "stopped $name ($pid)"; return 0; }; sleep 0.1; done
    say "$name ($pid) did not stop in 10s; killing it"
    kill -KILL "$pid" 2>/dev/null
}

stop slurmd "$DIR/slurmd.pid"
# The jobs' slurmstepd processes were ended by the scancel above (they outlive slurmd otherwise).
stop slurmctld "$DIR/slurmctld.pid"
stop munged "$DIR/munge/munged.pid"

rm -rf "$DIR" && say "removed $DIR"
