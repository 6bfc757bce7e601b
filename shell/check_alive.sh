#!/usr/bin/env bash
#
# shell/check_alive.sh - restart hashgate daemons that are dead or hung.
#
# Usage: shell/check_alive.sh [--loop] [daemon...]
#
# Daemons checked: the arguments, else $HASHGATE_DAEMONS, else every daemon in
# ALL_DAEMONS that has a config ($HASHGATE_CONF/<d>.json) and a pid file in
# $HASHGATE_RUN, i.e. that was started (a daemon stopped on purpose removes its pid file
# and is left alone).
#
# Per daemon:
#   restarting  another restart.sh holds <run>/<d>.lock         -> leave it
#   dead        no pid file, or its pid is gone                  -> restart.sh <d>
#   starting    pid alive, no <run>/<d>.admin, started < 30 s ago -> leave it
#   hung        pid alive but no admin file after 30 s, or GET /healthz gave no HTTP
#               answer within HASHGATE_PROBE_TIMEOUT (default 2 s) -> restart.sh <d>
#   alive       /healthz answered, whatever the status (503 starting, 200 ok/degraded)
#
# Without --loop: one pass (for cron); exit 0 if all were alive (or starting), 1 if any
# was restarted or could not be, 2 on usage errors.
# With --loop: a pass every HASHGATE_CHECK_INTERVAL seconds (default 1) until SIGTERM or
# SIGINT. Restarts run in the background so one slow start does not delay the checks
# of the others; a daemon whose restart failed is retried with backoff (1 s doubling to
# 60 s) and stays watched even though it has no pid file. Only one loop runs per run dir.
set -euo pipefail
# shellcheck source=shell/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

loop=0
explicit=()
for a in "$@"; do
	case $a in
	--loop) loop=1 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) explicit+=("$a") ;;
	esac
done
if ((${#explicit[@]} == 0)) && [[ -n ${HASHGATE_DAEMONS:-} ]]; then
	read -r -a explicit <<<"$HASHGATE_DAEMONS"
fi

interval=${HASHGATE_CHECK_INTERVAL:-1}
probe_timeout=${HASHGATE_PROBE_TIMEOUT:-2}
starting_grace=30

# select_daemons: fills `daemons` with the names to check this pass.
select_daemons() {
	local d
	daemons=()
	if ((${#explicit[@]})); then
		daemons=("${explicit[@]}")
		return
	fi
	for d in $ALL_DAEMONS; do
		if [[ -f $HASHGATE_CONF/$d.json ]] &&
			[[ -e $HASHGATE_RUN/$d.pid || -e $HASHGATE_RUN/$d.spawn || -n ${failures[$d]:-} || -n ${restart_pid[$d]:-} ]]; then
			daemons+=("$d")
		fi
	done
}

# check_one D: sets `state` (alive|starting|restarting|dead|hung) and `why`.
check_one() {
	local d=$1 pid="" age admin code
	state="" why=""
	if daemon_locked "$d"; then
		state=restarting why="a restart is in progress"
		return
	fi
	if ! pid="$(daemon_pid "$d")"; then
		state=dead
		if pid="$(read_pid "$HASHGATE_RUN/$d.pid")"; then
			why="pid $pid from $d.pid is gone"
		else
			why="no pid file"
		fi
		return
	fi
	if ! admin="$(daemon_admin "$d")"; then
		age="$(pid_age "$pid" || echo 0)"
		if ((age < starting_grace)); then
			state=starting why="pid $pid up ${age}s, no admin file yet"
		else
			state=hung why="pid $pid up ${age}s and still no $d.admin"
		fi
		return
	fi
	code="$(http_code "$admin/healthz" "$probe_timeout")"
	if [[ $code == 000 ]]; then
		state=hung why="pid $pid: no HTTP answer from $admin/healthz within ${probe_timeout}s"
		return
	fi
	state=alive why="pid $pid, /healthz $code"
}

declare -A failures=() next_try=() restart_pid=() last_state=()

# ---------------------------------------------------------------------------
# One pass (cron)

if ((!loop)); then
	select_daemons
	if ((${#daemons[@]} == 0)); then
		log "no started daemons to check (ALL_DAEMONS=\"$ALL_DAEMONS\", run dir $HASHGATE_RUN)"
		exit 0
	fi
	rc=0
	for d in "${daemons[@]}"; do
		check_one "$d"
		case $state in
		alive | starting)
			log "$d: $state ($why)"
			;;
		restarting)
			log "$d: $state ($why)"
			rc=1
			;;
		*)
			log "$d: $state ($why): restarting"
			rc=1
			"$SHELL_DIR/restart.sh" "$d" || log "$d: restart failed"
			;;
		esac
	done
	exit "$rc"
fi

# ---------------------------------------------------------------------------
# Loop

mkdir -p -- "$HASHGATE_RUN"
exec 8>>"$HASHGATE_RUN/check_alive.lock"
flock -n 8 || die "another check_alive.sh --loop already runs for $HASHGATE_RUN"

running=1
trap 'running=0' TERM INT
log "watching ${explicit[*]:-started daemons of: $ALL_DAEMONS} every ${interval}s (run dir $HASHGATE_RUN)"

# reap: collect finished background restarts and schedule retries for failed ones.
reap() {
	local d pid rc delay
	for d in "${!restart_pid[@]}"; do
		pid=${restart_pid[$d]}
		pid_alive "$pid" && continue
		rc=0
		wait "$pid" || rc=$?
		unset "restart_pid[$d]"
		if ((rc == 0)); then
			unset "failures[$d]" "next_try[$d]"
		else
			failures[$d]=$((${failures[$d]:-0} + 1))
			delay=$((1 << (failures[$d] - 1)))
			((delay > 60)) && delay=60
			next_try[$d]=$((SECONDS + delay))
			log "$d: restart failed (exit $rc, ${failures[$d]} in a row); next try in ${delay}s"
		fi
	done
}

while ((running)); do
	reap
	select_daemons
	for d in "${daemons[@]}"; do
		[[ -n ${restart_pid[$d]:-} ]] && continue
		check_one "$d"
		if [[ $state != "${last_state[$d]:-}" ]]; then
			log "$d: $state ($why)"
			last_state[$d]=$state
		fi
		case $state in
		dead | hung)
			((SECONDS < ${next_try[$d]:-0})) && continue
			log "$d: $state: restarting"
			# fd 8 (the loop's lock) must not be inherited by restart.sh or the daemon.
			"$SHELL_DIR/restart.sh" "$d" 8>&- &
			restart_pid[$d]=$!
			unset "last_state[$d]"
			;;
		esac
	done
	((running)) || break
	sleep "$interval" || true
done

log "stopping (SIGTERM/SIGINT)"
if ((${#restart_pid[@]})); then
	log "restarts still running in the background: ${!restart_pid[*]} (left to finish)"
fi
