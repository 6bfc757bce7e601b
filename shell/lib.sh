# shellcheck shell=bash
#
# shell/lib.sh - shared helpers for hashgate's operational scripts.
#
# Usage (from a script in shell/):
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing it:
#   - finds the repository root (HASHGATE_ROOT, default: the parent of shell/);
#   - exports the environment file $HASHGATE_ENV (default <repo>/.devnet/ports.env
#     when it exists) with `set -a`, so the daemons can expand ${VAR:-default} in
#     their configs;
#   - sets and exports HASHGATE_CONF (default <repo>/conf) and HASHGATE_RUN
#     (default <repo>/run), both made absolute;
#   - defines ALL_DAEMONS (start order) and the helpers below.
#
# Helpers: log, warn, die, at_exit, free_port, pid_alive, pid_is, pid_age,
#   read_pid, daemon_pid, http_code, wait_healthz, build_daemon, daemon_buildable,
#   daemon_lock, stop_pid, stop_daemon, log_tail.
#
# Per daemon <d>, the run directory holds (the daemon writes the first two once ready):
#   <d>.pid     its pid               <d>.admin   its admin base URL
#   <d>.log     its stdout/stderr     <d>.spawn   pid restart.sh launched (for orphans)
#   <d>.lock    flock(1) lock held by whoever is stopping/starting <d>

# Daemons in start order; `devnet.sh down` stops them in reverse. Issues that add a
# daemon append it here. mineragent comes after gateway: it links to a gateway's agent
# port (it still starts without one, and retries).
# shellcheck disable=SC2034 # used by the scripts that source this file
ALL_DAEMONS="alertcenter metawriter jobmaster gateway mineragent"

HASHGATE_ROOT="${HASHGATE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)}"
# shellcheck disable=SC2034 # used by the scripts that source this file
SHELL_DIR="$HASHGATE_ROOT/shell"
export HASHGATE_ROOT

# Go and the tools `go install` put in GOPATH/bin must be reachable even from cron or
# a bare CI environment.
_hg_path_add() { case ":$PATH:" in *":$1:"*) ;; *) [[ -d $1 ]] && PATH="$PATH:$1" ;; esac; return 0; }
_hg_path_add /usr/local/go/bin
if command -v go >/dev/null 2>&1; then
	_hg_gobin="$(go env GOBIN 2>/dev/null || true)"
	if [[ -z $_hg_gobin ]]; then
		_hg_gopath="$(go env GOPATH 2>/dev/null || true)"
		_hg_gobin="${_hg_gopath%%:*}/bin"
	fi
	_hg_path_add "$_hg_gobin"
	unset _hg_gobin _hg_gopath
fi
export PATH

# Environment file: exported wholesale, so ${VAR} references in conf/*.json resolve.
if [[ -z ${HASHGATE_ENV:-} && -f $HASHGATE_ROOT/.devnet/ports.env ]]; then
	HASHGATE_ENV="$HASHGATE_ROOT/.devnet/ports.env"
fi
if [[ -n ${HASHGATE_ENV:-} ]]; then
	if [[ ! -r $HASHGATE_ENV ]]; then
		printf '%s: HASHGATE_ENV=%s is not readable\n' "${0##*/}" "$HASHGATE_ENV" >&2
		exit 1
	fi
	set -a
	# shellcheck disable=SC1090
	. "$HASHGATE_ENV"
	set +a
	export HASHGATE_ENV
fi

_hg_abs() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$HASHGATE_ROOT/$1" ;; esac; }
HASHGATE_CONF="$(_hg_abs "${HASHGATE_CONF:-conf}")"
HASHGATE_RUN="$(_hg_abs "${HASHGATE_RUN:-run}")"
export HASHGATE_CONF HASHGATE_RUN

# ---------------------------------------------------------------------------
# Messages

# log MSG... : timestamped line on stderr, prefixed with the script name.
log() { printf '%s %s: %s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "${0##*/}" "$*" >&2; }
warn() { log "WARNING: $*"; }
die() {
	log "ERROR: $*"
	exit 1
}

# log_tail FILE [N]: print the last N (default 30) lines of FILE to stderr, framed.
log_tail() {
	local file=$1 n=${2:-30}
	if [[ -s $file ]]; then
		printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
		tail -n "$n" -- "$file" >&2 || true
		printf -- '----- end of %s -----\n' "$file" >&2
	else
		printf -- '(%s is empty or missing)\n' "$file" >&2
	fi
}

# at_exit CMD: run CMD (a string, eval'ed) when the script exits. lib.sh owns the EXIT
# trap; scripts add to it with this instead of calling `trap ... EXIT` themselves.
_HG_AT_EXIT=()
at_exit() { _HG_AT_EXIT+=("$1"); }
_hg_run_at_exit() {
	local cmd
	for cmd in "${_HG_AT_EXIT[@]}"; do eval "$cmd" || true; done
}
trap _hg_run_at_exit EXIT

# ---------------------------------------------------------------------------
# Ports

# free_port [VAR]: a random TCP port in 20000-32767 (below the kernel's ephemeral
# range) that nothing listens on: not in `ss -ltn` and refusing a connection through
# bash's /dev/tcp. No port is handed out twice during one script run, also when called
# as $(free_port): the ports given out are recorded in a file keyed by the script's $$.
# With VAR, the port is stored in that variable instead of printed.
_HG_PORTS_FILE="${TMPDIR:-/tmp}/hashgate-ports.$$"
# shellcheck disable=SC2016 # expanded when the script exits
at_exit 'rm -f -- "$_HG_PORTS_FILE"'
free_port() {
	local _fp_port _fp_tries=0 _fp_listening
	_fp_listening="$(_hg_listening_ports)"
	while ((_fp_tries++ < 500)); do
		_fp_port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		if [[ -f $_HG_PORTS_FILE ]] && grep -qx -- "$_fp_port" "$_HG_PORTS_FILE"; then continue; fi
		if grep -qx -- "$_fp_port" <<<"$_fp_listening" || _hg_tcp_connects "$_fp_port"; then continue; fi
		printf '%s\n' "$_fp_port" >>"$_HG_PORTS_FILE"
		if [[ $# -gt 0 ]]; then
			printf -v "$1" '%s' "$_fp_port"
		else
			printf '%s\n' "$_fp_port"
		fi
		return 0
	done
	log "free_port: no free port found in 20000-32767"
	return 1
}

# port_in_use PORT: true if something listens on PORT (any local address).
port_in_use() {
	grep -qx -- "$1" <<<"$(_hg_listening_ports)" || _hg_tcp_connects "$1"
}

# _hg_listening_ports: the local port of every listening TCP socket, one a line.
_hg_listening_ports() {
	ss -Htln 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' || true
}

# _hg_tcp_connects PORT: true if a TCP connect to 127.0.0.1:PORT succeeds within 1 s.
_hg_tcp_connects() {
	# shellcheck disable=SC2016 # $1 belongs to the inner bash
	timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------
# Processes

# pid_alive PID: true if PID is a running (not zombie) process.
pid_alive() {
	local pid=${1:-} state
	[[ $pid =~ ^[0-9]+$ ]] && ((pid > 1)) || return 1
	kill -0 "$pid" 2>/dev/null || [[ -d /proc/$pid ]] || return 1
	state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || state=""
	[[ $state != Z && $state != X ]]
}

# pid_is PID NAME: true if PID is alive and runs a program whose argv[0] or argv[1]
# (scripts run by an interpreter) ends in /NAME or is NAME. Guards against signalling
# an unrelated process that reused a stale pid.
pid_is() {
	local pid=$1 name=$2 arg i=0
	pid_alive "$pid" || return 1
	while IFS= read -r -d '' arg && ((i++ < 2)); do
		[[ $arg == "$name" || $arg == */"$name" ]] && return 0
	done 2>/dev/null <"/proc/$pid/cmdline"
	# Some servers (redis-server) rewrite their command line; the kernel's
	# name for the process (at most 15 characters) still tells.
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "${name:0:15}" ]]
}

# pid_age PID: seconds since PID started (prints nothing and fails if it is gone).
pid_age() {
	local age
	age="$(ps -o etimes= -p "$1" 2>/dev/null | tr -d ' ')" || return 1
	[[ -n $age ]] && printf '%s\n' "$age"
}

# read_pid FILE: print the pid stored in FILE (first word), fail if none.
read_pid() {
	local pid=""
	[[ -r $1 ]] || return 1
	read -r pid _ <"$1" 2>/dev/null || true
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
}

# daemon_pid D: pid of daemon D if it is running: from <run>/D.pid, else from the
# <run>/D.spawn file restart.sh wrote (a daemon that has not become ready yet).
daemon_pid() {
	local d=$1 pid f
	for f in "$HASHGATE_RUN/$d.pid" "$HASHGATE_RUN/$d.spawn"; do
		pid="$(read_pid "$f")" || continue
		if pid_is "$pid" "$d"; then
			printf '%s\n' "$pid"
			return 0
		fi
	done
	return 1
}

# stop_pid PID NAME TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL as a last
# resort (logged). Returns 0 once the process is gone.
stop_pid() {
	local pid=$1 name=$2 timeout=$3 deadline
	pid_alive "$pid" || return 0
	log "stopping $name (pid $pid) with SIGTERM, waiting up to ${timeout}s"
	kill -TERM "$pid" 2>/dev/null || true
	kill -CONT "$pid" 2>/dev/null || true # a stopped (SIGSTOP) process can then exit cleanly
	deadline=$((SECONDS + timeout))
	while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
	if pid_alive "$pid"; then
		log "$name (pid $pid) still running after ${timeout}s: sending SIGKILL as a last resort"
		kill -KILL "$pid" 2>/dev/null || true
		deadline=$((SECONDS + 5))
		while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		if pid_alive "$pid"; then
			log "$name (pid $pid) survived SIGKILL"
			return 1
		fi
	fi
	log "$name (pid $pid) stopped"
}

# stop_daemon D [TIMEOUT]: stop daemon D if it runs (TIMEOUT default
# $HASHGATE_STOP_TIMEOUT or 15 s) and remove its pid/admin/spawn files. The caller
# should hold daemon_lock D.
stop_daemon() {
	local d=$1 timeout=${2:-${HASHGATE_STOP_TIMEOUT:-15}} pid
	if pid="$(daemon_pid "$d")"; then
		stop_pid "$pid" "$d" "$timeout" || return 1
	fi
	rm -f -- "$HASHGATE_RUN/$d.pid" "$HASHGATE_RUN/$d.admin" "$HASHGATE_RUN/$d.spawn"
}

# daemon_lock D [WAIT]: take the exclusive lock <run>/D.lock on file descriptor 9,
# waiting up to WAIT seconds (default 120). Held until the script exits. Processes the
# holder starts must get `9>&-` so they do not keep the lock.
daemon_lock() {
	local d=$1 wait=${2:-120}
	mkdir -p -- "$HASHGATE_RUN"
	exec 9>>"$HASHGATE_RUN/$d.lock"
	flock -w "$wait" 9
}

# daemon_locked D: true if someone (a restart in progress) holds <run>/D.lock.
daemon_locked() {
	local d=$1
	[[ -e $HASHGATE_RUN/$d.lock ]] || return 1
	# A shared lock, so two probes at the same moment do not see each other.
	! flock -n -s "$HASHGATE_RUN/$d.lock" true 2>/dev/null
}

# ---------------------------------------------------------------------------
# Health

# http_code URL [TIMEOUT]: print the HTTP status of GET URL, "000" if there was no HTTP
# answer within TIMEOUT seconds (default $HASHGATE_PROBE_TIMEOUT or 2).
http_code() {
	local code
	code="$(curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-${HASHGATE_PROBE_TIMEOUT:-2}}" -- "$1" 2>/dev/null)" || true
	printf '%s\n' "${code:-000}"
}

# daemon_admin D: print the admin base URL daemon D published, fail if none.
daemon_admin() {
	local url=""
	[[ -s $HASHGATE_RUN/$1.admin ]] || return 1
	read -r url <"$HASHGATE_RUN/$1.admin" || true
	[[ -n $url ]] && printf '%s\n' "${url%/}"
}

# wait_healthz D TIMEOUT [PID]: wait until D has written <run>/D.admin and its
# /healthz answers 200. With PID, fail at once if that process dies.
wait_healthz() {
	local d=$1 timeout=$2 pid=${3:-} deadline admin code="" last=""
	deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if [[ -n $pid ]] && ! pid_alive "$pid"; then
			log "$d (pid $pid) exited while starting"
			return 1
		fi
		if admin="$(daemon_admin "$d")"; then
			code="$(http_code "$admin/healthz")"
			[[ $code == 200 ]] && return 0
			last="$admin/healthz answered $code"
		else
			last="no $HASHGATE_RUN/$d.admin yet"
		fi
		sleep 0.2
	done
	log "$d not ready after ${timeout}s (${last})"
	return 1
}

# ---------------------------------------------------------------------------
# Build

# daemon_buildable D: true if <repo>/D/main.go exists.
daemon_buildable() { [[ -f $HASHGATE_ROOT/$1/main.go ]]; }

# Daemons built without cgo (static binaries; the Makefile's STATIC_DAEMONS).
STATIC_DAEMONS="mineragent"

# build_daemon D: go build -o bin/D ./D from the repository root (go.work applies),
# stamping pkg/version.Commit with the checkout's commit when there is one (as make build).
build_daemon() {
	local d=$1 commit mod flags=()
	commit="$(git -C "$HASHGATE_ROOT" rev-parse --short=12 HEAD 2>/dev/null)" || commit=""
	mod="$(awk '$1 == "module" {print $2; exit}' "$HASHGATE_ROOT/pkg/go.mod" 2>/dev/null)" || mod=""
	if [[ -n $commit && -n $mod ]]; then flags=(-ldflags "-X $mod/version.Commit=$commit"); fi
	local cgo=1
	if [[ " $STATIC_DAEMONS " == *" $d "* ]]; then cgo=0; fi
	log "building bin/$d"
	(cd "$HASHGATE_ROOT" && CGO_ENABLED=$cgo go build "${flags[@]}" -o "bin/$d" "./$d")
}
