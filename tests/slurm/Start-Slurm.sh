#!/usr/bin/env bash
# Starts a one-node Slurm on this machine for the tests: munged (as the munge user, with a key of
# its own) and slurmctld and slurmd (as root) with a generated slurm.conf. Everything they write is
# in one state folder, so nothing in /etc is used or changed and Stop-Slurm.sh removes it all.
#
#   eval "$(tests/slurm/Start-Slurm.sh)"      # exports SLURM_CONF (and GRID_SLURM_DIR)
#   sbatch --wrap 'hostname'; squeue
#   tests/slurm/Stop-Slurm.sh
#
# Messages go to stderr; stdout holds only the export lines. Run as root (slurmd starts jobs as
# their users). Installs Debian's slurm-wlm and munge when missing (apt-get install -y).
#
# Environment:
#   GRID_SLURM_DIR      the state folder (default ${TMPDIR:-/tmp}/grid-slurm)
#   GRID_SLURM_CTLD_PORT, GRID_SLURM_SLURMD_PORT   ports (default 6817 and 6818, the usual ones)
#   GRID_SLURM_CPUS     CPUs the node offers (default nproc, at least 4)
#   GRID_SLURM_TIMEOUT  seconds to wait for the node to be idle (default 60)
set -euo pipefail

DIR="${GRID_SLURM_DIR:-${TMPDIR:-/tmp}/grid-slurm}"
CTLD_PORT="${GRID_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${GRID_SLURM_SLURMD_PORT:-6818}"
TIMEOUT="${GRID_SLURM_TIMEOUT:-60}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { echo "Start-Slurm: $*" >&2; }
die() { echo "Start-Slurm: error: $*" >&2; exit 1; }
exports() { printf 'export SLURM_CONF=%q\nexport GRID_SLURM_DIR=%q\n' "$DIR/slurm.conf" "$DIR"; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "run as root (slurmd runs jobs as their users; munged starts as the munge user)."
START=$(date +%s.%N)

# --- Packages -----------------------------------------------------------------------------------
need=()
for exe in munged mungekey slurmctld slurmd sbatch; do
    command -v "$exe" >/dev/null 2>&1 || [[ -x /usr/sbin/$exe ]] || need+=("$exe")
done
if ((${#need[@]})); then
    say "installing slurm-wlm and munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # A clean machine may have no package lists yet: update only when the first try fails.
    if ! apt-get install -y --no-install-recommends slurm-wlm munge >&2; then
        apt-get update >&2 || die "apt-get update failed."
        apt-get install -y --no-install-recommends slurm-wlm munge >&2 || die "apt-get install slurm-wlm munge failed."
    fi
fi
export PATH="$PATH:/usr/sbin:/sbin"
id munge >/dev/null 2>&1 || die "there is no munge user (the munge package makes it)."

# --- Already running? ---------------------------------------------------------------------------
if alive "$DIR/munged.pid" && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" \
    && SLURM_CONF="$DIR/slurm.conf" sinfo -h -N -o '%T' 2>/dev/null | grep -qx 'idle'; then
    say "already running in $DIR"
    exports
    exit 0
fi
if [[ -e "$DIR" ]]; then
    say "clearing what an earlier start left in $DIR"
    GRID_SLURM_DIR="$DIR" "$HERE/Stop-Slurm.sh" >&2 || true
fi
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use (another slurmctld or slurmd?). Stop it, or set GRID_SLURM_CTLD_PORT and GRID_SLURM_SLURMD_PORT."
    fi
done

mkdir -p "$DIR"
chmod 0755 "$DIR"
trap 'say "failed; the logs are in $DIR (munged.log, slurmctld.log, slurmd.log)"' ERR

# --- munge --------------------------------------------------------------------------------------
# A key of its own in a folder only munge reads; the socket folder is readable by all so any user
# could submit (the tests submit as root).
mkdir -p "$DIR/munge" "$DIR/munge/key"
chown munge:munge "$DIR/munge" "$DIR/munge/key"
chmod 0755 "$DIR/munge"
chmod 0700 "$DIR/munge/key"
runuser -u munge -- mungekey --create --keyfile="$DIR/munge/key/munge.key" --bits=1024 >&2 \
    || die "mungekey could not create a key."
SOCKET="$DIR/munge/munge.socket"
runuser -u munge -- munged \
    --socket="$SOCKET" --key-file="$DIR/munge/key/munge.key" \
    --log-file="$DIR/munge/munged.log" --pid-file="$DIR/munge/munged.pid" \
    --seed-file="$DIR/munge/munged.seed" >&2 \
    || die "munged did not start: $(tail -n 5 "$DIR/munge/munged.log" 2>/dev/null)"
ln -sf "$DIR/munge/munged.pid" "$DIR/munged.pid"
for _ in $(seq 50); do
    munge -n -S "$SOCKET" 2>/dev/null | unmunge -S "$SOCKET" >/dev/null 2>&1 && break
    sleep 0.1
done
munge -n -S "$SOCKET" | unmunge -S "$SOCKET" >/dev/null || die "munged runs but does not answer on $SOCKET."

# --- slurm.conf ---------------------------------------------------------------------------------
HOST="$(hostname -s)"
# At least 4 CPUs declared even on a smaller machine (config_overrides below lets slurmd accept
# it), so a test sweep's tasks, which mostly wait, run side by side as on a real node.
CPUS="${GRID_SLURM_CPUS:-$(( $(nproc) < 4 ? 4 : $(nproc) ))}"
MEM_MB=$(( $(awk '/MemTotal/ { print $2 }' /proc/meminfo) / 1024 ))
REAL=$(( MEM_MB < 2048 ? MEM_MB / 2 : 1024 ))
mkdir -p "$DIR/state" "$DIR/spool"
cat > "$DIR/slurm.conf" <<EOF
# Generated by tests/slurm/Start-Slurm.sh: a one-node cluster for the tests.
ClusterName=grid
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups and no systemd: processes are tracked by their parent ids, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A line per ended job (id, state, exit code), without slurmdbd.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
# Trust the CPUs and memory declared here over what slurmd finds.
SlurmdParameters=config_overrides
# Start a throttled array's next task within about a second of the last one ending (3 s without).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
MailProg=/bin/true
ReturnToService=2
# SIGTERM, then KillWait seconds, then SIGKILL (scancel, the time limit, a node's end).
KillWait=10
# Ended jobs stay in squeue/scontrol this long (seconds).
MinJobAge=60
InactiveLimit=0
SlurmdTimeout=30
SlurmctldTimeout=30
MessageTimeout=10
NodeName=$HOST CPUs=$CPUS RealMemory=$REAL State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF="$DIR/slurm.conf"

# --- slurmctld and slurmd -----------------------------------------------------------------------
# -c: a clean state (no jobs of an earlier start). Both fork into the background.
slurmctld -c -f "$SLURM_CONF" >&2 || die "slurmctld did not start: $(tail -n 5 "$DIR/slurmctld.log" 2>/dev/null)"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer: $(tail -n 5 "$DIR/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" >&2 || die "slurmd did not start: $(tail -n 5 "$DIR/slurmd.log" 2>/dev/null)"

deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while (( $(date +%s) < deadline )); do
    state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1)"
    [[ "$state" == "idle" ]] && break
    alive "$DIR/slurmd.pid" || die "slurmd exited: $(tail -n 5 "$DIR/slurmd.log" 2>/dev/null)"
    sleep 0.2
done
[[ "$state" == "idle" ]] || die "the node is '${state:-unknown}', not idle, after ${TIMEOUT}s: $(scontrol show node "$HOST" 2>/dev/null | grep -i reason) $(tail -n 5 "$DIR/slurmd.log" 2>/dev/null)"
trap - ERR
say "node $HOST idle ($CPUS CPU(s)) in $(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s; SLURM_CONF=$SLURM_CONF"
exports
