#!/usr/bin/env bash
# local_slurm.sh - a REAL single-node SLURM cluster on this machine, for
# tests/test_slurm.py (and for trying profiles/slurm by hand).
#
# Debian 12 (bookworm): slurm-wlm 22.05 (slurmctld + slurmd + client) and munge
# from apt; optionally MariaDB + slurmdbd so that `sacct` works. Must run as
# root. Needs no systemd and no cgroups: the daemons are started directly and
# their PIDs are recorded in $STATE_DIR, so `stop` ends exactly those.
# Adapted from a tested recipe (single node, loopback only); see docs/cluster.md.
#
# Usage:
#   bash tests/slurm/local_slurm.sh [start]   install if needed, configure, start (idempotent)
#   bash tests/slurm/local_slurm.sh stop      stop the daemons THIS script started (by PID)
#   bash tests/slurm/local_slurm.sh status    daemon PIDs + sinfo
#
# The cluster: node `localhost`, two partitions on it:
#   $SLURM_PARTITION (default `cpu`, the default partition) and
#   $SLURM_GPU_PARTITION (default `gpu`; the same node, no real GPU, no GRES:
#   it only shows that segmentation jobs are routed to a GPU partition).
#
# Knobs (environment):
#   SLURM_WITH_DBD=0   (default) no accounting database: fewer packages and daemons;
#                      `sacct` fails, so run snakemake with --slurm-status-command squeue
#                      (MinJobAge below keeps finished jobs visible to squeue for 10 min).
#   SLURM_WITH_DBD=1   MariaDB + slurmdbd: `sacct` works (the plugin's default status
#                      command); account $SLURM_ACCOUNT is created for root.
#   SLURM_CPUS         CPUs advertised for the node (default: nproc). May exceed the real
#                      core count (SlurmdParameters=config_overrides).
#   SLURM_REAL_MEMORY  RealMemory in MB (default: 90% of MemTotal).
#   SLURM_PARTITION, SLURM_GPU_PARTITION, SLURM_ACCOUNT (default `livescreen`).
set -euo pipefail

ACTION="${1:-start}"
WITH_DBD="${SLURM_WITH_DBD:-0}"
PARTITION="${SLURM_PARTITION:-cpu}"
GPU_PARTITION="${SLURM_GPU_PARTITION:-gpu}"
ACCOUNT="${SLURM_ACCOUNT:-livescreen}"
CLUSTER="livescreen"
NODE="localhost"
STATE_DIR=/run/slurm-local          # PIDs of the daemons started by this script
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
DB_PASS="slurmdbpass"               # local-only DB (mariadbd runs with --skip-networking)

log() { echo "[local_slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$STATE_DIR/$1.pid" ] && cat "$STATE_DIR/$1.pid" || true; }
wait_for() {  # wait_for <seconds> <description> <command...>
  local t="$1" what="$2"; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${t}s waiting for: $what"
    sleep 0.5
  done
}
stop_one() {  # stop_one <name>: TERM, then KILL after 15 s; only PIDs we recorded
  local name="$1" pid; pid="$(pid_of "$name")"
  if alive "$pid"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do alive "$pid" || break; sleep 0.5; done
    alive "$pid" && { log "$name did not exit, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$STATE_DIR/$name.pid"
}

do_stop() {
  stop_one slurmd; stop_one slurmctld; stop_one slurmdbd; stop_one mariadbd; stop_one munged
}

do_status() {
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    pid="$(pid_of "$d")"
    if alive "$pid"; then echo "$d: running (pid $pid)"; else echo "$d: not started by this script"; fi
  done
  command -v sinfo >/dev/null && sinfo || true
}

install_pkgs() {
  local pkgs=(munge slurmctld slurmd slurm-client)
  [ "$WITH_DBD" = 1 ] && pkgs+=(slurmdbd mariadb-server)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get"
    log "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# write_if_changed <dest> <mode>  (content on stdin); returns 0 if changed
write_if_changed() {
  local dest="$1" mode="$2" tmp; tmp="$(mktemp)"
  cat >"$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then rm -f "$tmp"; return 1; fi
  install -m "$mode" -o root -g root "$tmp" "$dest"; rm -f "$tmp"; return 0
}

write_configs() {
  local cpus="${SLURM_CPUS:-$(nproc)}"
  local memtotal_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
  local realmem="${SLURM_REAL_MEMORY:-$(( memtotal_mb * 90 / 100 ))}"
  local acct_lines
  if [ "$WITH_DBD" = 1 ]; then
    acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageEnforce=associations"
  else
    acct_lines="AccountingStorageType=accounting_storage/none"
  fi
  mkdir -p "$CONF_DIR"
  CONF_CHANGED=0
  write_if_changed "$CONF_DIR/slurm.conf" 0644 <<CONF && CONF_CHANGED=1 || true
# generated by livescreen tests/slurm/local_slurm.sh - single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# no cgroups: plain process tracking, no task containment (memory is not enforced)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
$acct_lines
# every finished job, with its partition, one line each (tests read it)
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem must not take the whole node
DefMemPerCPU=1000
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
# keep finished jobs visible to squeue for 10 min (snakemake --slurm-status-command squeue)
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$realmem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=$GPU_PARTITION Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
CONF
  if [ "$WITH_DBD" = 1 ]; then
    write_if_changed "$CONF_DIR/slurmdbd.conf" 0600 <<CONF || true
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurm/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
CONF
  fi
}

start_munged() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"; return
  fi
  runuser -u munge -- /usr/sbin/munged          # daemonizes, writes /run/munge/munged.pid
  wait_for 15 munged bash -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
  log "munged started (pid $(pid_of munged))"
}

start_mariadb() {
  mkdir -p /run/mysqld; chown mysql:root /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  if ! mariadb-admin --socket=/run/mysqld/mysqld.sock ping >/dev/null 2>&1; then
    setsid nohup /usr/sbin/mariadbd --user=mysql --skip-networking \
      --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
      --innodb-lock-wait-timeout=900 \
      >"$LOG_DIR/mariadbd.out" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/mariadbd.pid"
    wait_for 60 mariadbd mariadb-admin --socket=/run/mysqld/mysqld.sock ping
    log "mariadbd started (pid $(pid_of mariadbd))"
  else
    log "mariadbd already running"
  fi
  mariadb --socket=/run/mysqld/mysqld.sock -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
    FLUSH PRIVILEGES;"
}

start_slurmdbd() {
  if ! alive "$(pid_of slurmdbd)"; then
    /usr/sbin/slurmdbd                            # daemonizes, writes /run/slurm/slurmdbd.pid
    wait_for 30 "slurmdbd pidfile" test -s /run/slurm/slurmdbd.pid
    cp /run/slurm/slurmdbd.pid "$STATE_DIR/slurmdbd.pid"
    log "slurmdbd started (pid $(pid_of slurmdbd))"
  fi
  wait_for 60 "slurmdbd answering" sacctmgr -n list cluster
  local user; user="${SUDO_USER:-root}"
  sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=livescreen \
         Organization=livescreen >/dev/null
  for u in root "$user"; do
    sacctmgr -n -P list assoc user="$u" account="$ACCOUNT" format=user | grep -qx "$u" \
      || sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" \
           Cluster="$CLUSTER" >/dev/null
  done
}

start_slurm_daemons() {
  # restart running daemons if slurm.conf changed (e.g. SLURM_WITH_DBD switched)
  if [ "$CONF_CHANGED" = 1 ]; then
    alive "$(pid_of slurmd)" && { log "slurm.conf changed - restarting slurmd"; stop_one slurmd; }
    alive "$(pid_of slurmctld)" && { log "slurm.conf changed - restarting slurmctld"; stop_one slurmctld; }
  fi
  if ! alive "$(pid_of slurmctld)"; then
    rm -f /run/slurm/slurmctld.pid
    /usr/sbin/slurmctld                           # daemonizes
    wait_for 30 "slurmctld pidfile" test -s /run/slurm/slurmctld.pid
    cp /run/slurm/slurmctld.pid "$STATE_DIR/slurmctld.pid"
    wait_for 30 "slurmctld answering" scontrol ping
    log "slurmctld started (pid $(pid_of slurmctld))"
  fi
  if ! alive "$(pid_of slurmd)"; then
    rm -f /run/slurm/slurmd.pid
    /usr/sbin/slurmd -N "$NODE"                   # daemonizes
    wait_for 30 "slurmd pidfile" test -s /run/slurm/slurmd.pid
    cp /run/slurm/slurmd.pid "$STATE_DIR/slurmd.pid"
    log "slurmd started (pid $(pid_of slurmd))"
  fi
  # node must become usable (idle/mixed/allocated); resume it if it is down/drained
  local end=$(( $(date +%s) + 60 )) st
  while :; do
    st="$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1)"
    case "$st" in
      idle|mixed|allocated|completing) break ;;
      *down*|*drain*|*fail*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || die "node $NODE not usable (state: '$st'), see $LOG_DIR/slurm*.log"
    sleep 0.5
  done
  log "node $NODE is $st"
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "must be run as root"
  install_pkgs
  mkdir -p "$STATE_DIR" /run/slurm "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
  write_configs
  start_munged
  if [ "$WITH_DBD" = 1 ]; then start_mariadb; start_slurmdbd; fi
  start_slurm_daemons
  sinfo
}

case "$ACTION" in
  start)   do_start ;;
  stop)    [ "$(id -u)" -eq 0 ] || die "must be run as root"; do_stop ;;
  status)  do_status ;;
  restart) do_stop; do_start ;;
  *) die "unknown action '$ACTION' (start|stop|status|restart)" ;;
esac
