#!/usr/bin/env bash
#
# shell/restart.sh - (re)start one hashgate daemon and wait until it is ready.
#
# Usage: shell/restart.sh <daemon>
#        shell/restart.sh all    every daemon of ALL_DAEMONS (or $HASHGATE_DAEMONS) that has
#                                a config, one after the other in start order (mineragent
#                                after gateway); stops at the first that fails
#
# Steps (STYLE.md §7, watchdog contract):
#   1. build bin/<daemon> if it is missing or HASHGATE_BUILD=1;
#   2. validate the config: bin/<daemon> -t -c $HASHGATE_CONF/<daemon>.json
#      (an invalid config leaves a running daemon untouched);
#   3. if it runs: SIGTERM, wait up to HASHGATE_STOP_TIMEOUT, SIGKILL only as a last resort;
#   4. remove stale <run>/<daemon>.pid and .admin;
#   5. start it detached (setsid nohup, stdin /dev/null, output appended to
#      <run>/<daemon>.log), from the repository root;
#   6. wait for <run>/<daemon>.admin and GET /healthz = 200.
# On failure it prints the last 30 log lines, stops what it started and exits 1.
#
# Environment:
#   HASHGATE_CONF           config directory (default <repo>/conf)
#   HASHGATE_RUN            run directory (default <repo>/run; devnet: <repo>/.devnet/run)
#   HASHGATE_ENV            env file exported for the daemon (default <repo>/.devnet/ports.env)
#   HASHGATE_BUILD=1        rebuild the binary first
#   HASHGATE_STOP_TIMEOUT   seconds to wait after SIGTERM (default 15)
#   HASHGATE_READY_TIMEOUT  seconds to wait for /healthz 200 (default 30)
#
# Concurrent restarts of one daemon (operator and check_alive.sh) are serialised by
# flock on <run>/<daemon>.lock.
#
# Exit: 0 ready, 1 failed (config invalid, build failed, not ready in time), 2 usage.
set -euo pipefail
# shellcheck source=shell/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
d=$1
case $d in -h | --help) usage ;; esac
[[ $d =~ ^[a-z][a-z0-9_-]*$ ]] || die "bad daemon name: $d"

if [[ $d == all ]]; then
	for d in ${HASHGATE_DAEMONS:-$ALL_DAEMONS}; do
		if [[ ! -f $HASHGATE_CONF/$d.json ]]; then
			warn "$d: no config $HASHGATE_CONF/$d.json, skipping"
			continue
		fi
		if [[ ! -x $HASHGATE_ROOT/bin/$d ]] && ! daemon_buildable "$d"; then
			warn "$d: no bin/$d and no $HASHGATE_ROOT/$d/main.go, skipping"
			continue
		fi
		"${BASH_SOURCE[0]}" "$d" || die "restart of $d failed; the daemons after it were not restarted"
	done
	exit 0
fi

stop_timeout=${HASHGATE_STOP_TIMEOUT:-15}
ready_timeout=${HASHGATE_READY_TIMEOUT:-30}
[[ $stop_timeout =~ ^[0-9]+$ ]] || die "HASHGATE_STOP_TIMEOUT must be whole seconds"
[[ $ready_timeout =~ ^[0-9]+$ ]] || die "HASHGATE_READY_TIMEOUT must be whole seconds"

bin="$HASHGATE_ROOT/bin/$d"
conf="$HASHGATE_CONF/$d.json"
logfile="$HASHGATE_RUN/$d.log"

[[ -f $conf ]] || die "no config $conf"
mkdir -p -- "$HASHGATE_RUN"

# One restart of <d> at a time; wait for a running one to finish.
daemon_lock "$d" $((stop_timeout + ready_timeout + 60)) ||
	die "another restart of $d holds $HASHGATE_RUN/$d.lock"

# 1. Build.
if [[ ! -x $bin || ${HASHGATE_BUILD:-0} == 1 ]]; then
	build_daemon "$d" || die "build of $d failed"
fi

# 2. Validate the config before touching a running daemon.
if ! out="$(cd "$HASHGATE_ROOT" && "$bin" -t -c "$conf" 2>&1 </dev/null)"; then
	printf '%s\n' "$out" >&2
	die "config $conf is invalid; $d left as it was"
fi

# 3./4. Stop the running instance and clear its files.
stop_daemon "$d" "$stop_timeout" || die "could not stop $d"

# 5. Start detached. fd 9 (our lock) is closed for the daemon.
log "starting $d: $bin -c $conf (log $logfile)"
cd "$HASHGATE_ROOT"
setsid nohup "$bin" -c "$conf" </dev/null >>"$logfile" 2>&1 9>&- &
pid=$!
printf '%s\n' "$pid" >"$HASHGATE_RUN/$d.spawn"

# 6. Wait until ready.
if ! wait_healthz "$d" "$ready_timeout" "$pid"; then
	log_tail "$logfile" 30
	if pid_alive "$pid"; then
		log "stopping the $d we started, so no half-started copy is left behind"
		stop_pid "$pid" "$d" "$stop_timeout" || true
	fi
	rm -f -- "$HASHGATE_RUN/$d.spawn" "$HASHGATE_RUN/$d.admin"
	if [[ "$(read_pid "$HASHGATE_RUN/$d.pid" || true)" == "$pid" ]]; then
		rm -f -- "$HASHGATE_RUN/$d.pid"
	fi
	die "$d did not become ready"
fi

if [[ "$(read_pid "$HASHGATE_RUN/$d.pid" || true)" == "$pid" ]]; then
	rm -f -- "$HASHGATE_RUN/$d.spawn"
else
	warn "$HASHGATE_RUN/$d.pid does not hold the started pid $pid; keeping $d.spawn"
fi
log "$d ready: pid $pid, admin $(daemon_admin "$d")"
