#!/usr/bin/env bash
# A private one-node SLURM cluster for the tests: munged, slurmctld and slurmd started as root in a
# directory of their own (generated slurm.conf, private munge key and socket, free ports chosen now),
# without systemd and without touching /etc/slurm or /etc/munge.
#
#   slurm_cluster.sh start DIR   start the daemons; prints `export SLURM_CONF=DIR/slurm.conf` and waits
#                                until the node is idle. Exit 77 (with one line) when SLURM cannot start
#                                here: binaries missing, not root, or the node never becomes idle.
#   slurm_cluster.sh stop DIR    stop every daemon started in DIR (by the pid files written there)
#
# Clients find the cluster through SLURM_CONF=DIR/slurm.conf. srun uses pmix (MpiDefault=pmix), the
# PMI that Debian's Open MPI supports. The node has the CPUs of this machine (nproc).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }

stop_cluster() {
  local dir="$1" pidfile pid pids=""
  # Jobs first: cancel them and wait for their steps to end, then end whatever step process slurmd
  # still tracks (by pid, as it lists them), so that no job process outlives the cluster.
  if [ -s "$dir/slurmctld.pid" ] && [ -f "$dir/slurm.conf" ]; then
    export SLURM_CONF="$dir/slurm.conf"
    pids="$(timeout 10 scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }')" || true
    timeout 10 scancel --full --quiet --user=root 2>/dev/null || true
    for _ in $(seq 30); do
      [ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING,PENDING,REQUEUED 2>/dev/null)" ] && break
      sleep 0.5
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [ -s "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

free_port() {
  # A port nobody listens on now (the kernel's choice for port 0); two calls give two ports.
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_cluster() {
  local dir="$1"
  for b in munged mungekey slurmctld slurmd sbatch srun scontrol scancel sinfo python3; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || skip "SLURM tests need '$b' (Debian packages slurm-wlm and munge)"
  done
  [ "$(id -u)" -eq 0 ] || skip "SLURM tests start slurmctld/slurmd/munged and need root"
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$dir"/{munge,state,spool}
  dir="$(cd "$dir" && pwd)"
  chmod 700 "$dir/munge"
  # Stop whatever this script started if any later step fails.
  trap 'stop_cluster "$dir"' ERR
  mungekey --create --keyfile "$dir/munge/munge.key" --force >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.socket" --pid-file "$dir/munged.pid" \
         --log-file "$dir/munge/munged.log" --seed-file "$dir/munge/munged.seed" --force 2>"$dir/munged.err" ||
    { stop_cluster "$dir"; skip "munged did not start: $(tail -1 "$dir/munged.err")"; }
  local host ctld_port slurmd_port cpus
  host="$(hostname -s)"
  ctld_port="$(free_port)"
  slurmd_port="$(free_port)"
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(free_port)"; done
  cpus="$(nproc)"
  cat > "$dir/slurm.conf" <<CONF
ClusterName=eqntktest
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SlurmUser=root
SlurmdUser=root
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
KillWait=5
MinJobAge=600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" >"$dir/slurmctld.err" 2>&1 ||
    { stop_cluster "$dir"; skip "slurmctld did not start: $(tail -1 "$dir/slurmctld.log" 2>/dev/null)"; }
  slurmd -f "$SLURM_CONF" >"$dir/slurmd.err" 2>&1 ||
    { stop_cluster "$dir"; skip "slurmd did not start: $(tail -1 "$dir/slurmd.log" 2>/dev/null)"; }
  for _ in $(seq 60); do
    if [ "$(sinfo -h -N -o '%t' 2>/dev/null | head -1)" = idle ]; then
      trap - ERR
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.5
  done
  stop_cluster "$dir"
  skip "the SLURM node did not become idle within 30 s (see $dir/slurmctld.log, $dir/slurmd.log)"
}

case "${1:-}" in
  start) [ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }; start_cluster "$2" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }; stop_cluster "$2" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
