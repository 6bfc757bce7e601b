#!/usr/bin/env bash
#
# shell/devnet.sh - the whole hashgate cluster on one machine, under <repo>/.devnet/.
#
# Usage:
#   shell/devnet.sh up             deps, btcd (regtest) + nats-server, ports.env, every
#                                  daemon via restart.sh, the test miners (hgminer mine on
#                                  STRATUM, the gateway, and on AGENT_STRATUM, the
#                                  mineragent), then check_alive.sh --loop
#   shell/devnet.sh down [--clean] stop the test miners, the watchdog, the daemons (reverse
#                                  order), nats, btcd; keeps .devnet (ports.env, JetStream
#                                  store, logs, chain files) unless --clean, which deletes it
#   shell/devnet.sh status         processes, each daemon's /healthz, the mineragent's link,
#                                  the miners' counts, block height (exit 1 if something
#                                  that should run does not)
#
# Layout of .devnet/:
#   ports.env              NODE_RPC NODE_RPC_USER NODE_RPC_PASS NODE_P2P NATS_URL NATS_USER
#                          NATS_PASS HASHGATE_RUN HASHGATE_NET PAYOUT_ADDRESS, one
#                          <DAEMON>_ADMIN_PORT per daemon, and the gateway's STRATUM
#                          (host:port miners dial) = STRATUM_LISTEN, GATEWAY_ID,
#                          VARDIFF_MIN, VARDIFF_START (mode 600; edit the last three to
#                          taste, `up` keeps them; the mineragent's vardiff reads the same
#                          two), the gateway's agent port AGENT_LISTEN = AGENT_UPSTREAM (the
#                          mineragent dials it) and AGENT_TOKEN, the mineragent's
#                          AGENT_STRATUM (host:port its miners dial) = AGENT_STRATUM_LISTEN
#                          and AGENT_ADMIN_PORT (= MINERAGENT_ADMIN_PORT, the name its
#                          config reads); scripts load it by default (see lib.sh)
#   nats.conf              generated nats-server config; nats/ is its JetStream store
#   btcd/                  btcd.conf (empty), data/, logs/. Note: btcd --regtest deletes
#                          its chain on every start, so each start of btcd re-mines the
#                          432 blocks (a second or two)
#   run/                   HASHGATE_RUN: *.pid, *.admin, *.log of btcd, nats, daemons,
#                          check_alive, hgminer and hgminer-agent (the test miners)
#
# `up` is safe to re-run: running processes are kept, ports.env is reused (a port that
# another program took meanwhile is replaced). Ports are random in 20000-32767.
# Daemons in ALL_DAEMONS (or $HASHGATE_DAEMONS) without <repo>/<d>/main.go or
# conf/<d>.json are skipped with a warning.
#
# The test miner (bin/hgminer, built from tools/hgminer) mines as worker devnet.cpu1 at
# regtest difficulty, where every share is a block: HASHGATE_MINER_SHARE_RATE (shares
# per second, default 0.5) is therefore the block rate, HASHGATE_MINER_RATE (default
# 200000) caps its hashes per second. A second one, hgminer-agent, mines the same way
# as worker devnet.agentrig through the mineragent (AGENT_STRATUM), so blocks are also
# found through the agent link. They reconnect by themselves; check_alive.sh does not
# watch them. HASHGATE_MINER=0 leaves both out.
set -euo pipefail
# shellcheck source=shell/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

DEVNET="$HASHGATE_ROOT/.devnet"
RUN="$DEVNET/run"
ENV_FILE="$DEVNET/ports.env"
NATS_CONF="$DEVNET/nats.conf"
BTCD_DIR="$DEVNET/btcd"
RPC_USER=hashgate
NATS_USER_NAME=hashgate
MINING_ADDRESS=bcrt1qckw9tyna2k76pmy8mysww76ec4p3grajy6l9uq
PAYOUT=bcrt1ql7fk7lfuvazvrytsx4efz5pv75j23cfkmjfytk
# Coinbases mature after 100 blocks; btcd's regtest activates segwit by BIP9
# signalling only from height 432 (Bitcoin Core's regtest has it from block 0), so
# the devnet mines to 432 to behave like a segwit network.
MATURE_HEIGHT=432
# Test miners: worker names and throttles (see the header).
MINER_USER=devnet.cpu1
AGENT_MINER_USER=devnet.agentrig
MINER_SHARE_RATE=${HASHGATE_MINER_SHARE_RATE:-0.5}
MINER_RATE=${HASHGATE_MINER_RATE:-200000}

# Everything below works on the devnet's run dir and env, whatever the caller set.
HASHGATE_RUN="$RUN"
export HASHGATE_RUN

daemon_list() { printf '%s\n' "${HASHGATE_DAEMONS:-$ALL_DAEMONS}"; }

random_secret() { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

# port_of HOST:PORT|URL -> PORT
port_of() { printf '%s\n' "${1##*:}"; }

# proc_pid NAME PROG: pid from $RUN/NAME.pid if it is alive and runs PROG.
proc_pid() {
	local pid
	pid="$(read_pid "$RUN/$1.pid")" && pid_is "$pid" "$2" && printf '%s\n' "$pid"
}

# btcd_rpc METHOD [PARAMS-JSON [MAX-TIME]]: print the JSON-RPC `result` of METHOD.
btcd_rpc() {
	local method=$1 params=${2:-[]} maxtime=${3:-5} reply
	reply="$(curl -sS --fail-with-body --max-time "$maxtime" --user "$NODE_RPC_USER:$NODE_RPC_PASS" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"$method\",\"params\":$params}" \
		"http://$NODE_RPC/" 2>&1)" || {
		printf '%s\n' "$reply" >&2
		return 1
	}
	jq -e -r 'if .error == null then .result else error(.error | tostring) end' <<<"$reply"
}

# fail_with_log FILE MSG: print the tail of FILE and die with MSG.
fail_with_log() {
	log_tail "$1" 30
	die "$2"
}

# ---------------------------------------------------------------------------
# up

# choose_config: set NODE_* / NATS_* and the monitor port NATS_MON, reusing ports.env
# and nats.conf where they exist; replace ports taken by others while we are down.
choose_config() {
	local btcd_up=0 nats_up=0 redis_up=0 rpc_port p2p_port nats_port mon_port="" redis_port
	proc_pid btcd btcd >/dev/null && btcd_up=1
	proc_pid nats nats-server >/dev/null && nats_up=1
	proc_pid redis redis-server >/dev/null && redis_up=1

	if [[ -f $ENV_FILE ]]; then
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
		HASHGATE_RUN="$RUN" # the file's value may predate a move of the repository
		log "reusing $ENV_FILE"
	elif ((btcd_up || nats_up || redis_up)); then
		# Running without ports.env: their credentials are unknown, start them afresh.
		log "btcd/nats run but $ENV_FILE is missing: restarting them"
		stop_infra
		btcd_up=0 nats_up=0
	fi
	if [[ -f $NATS_CONF ]]; then
		mon_port="$(sed -n 's/^http: *127\.0\.0\.1:\([0-9]*\).*/\1/p' "$NATS_CONF")"
	fi

	rpc_port="$(port_of "${NODE_RPC:-}")"
	p2p_port="$(port_of "${NODE_P2P:-}")"
	nats_port="$(port_of "${NATS_URL:-}")"
	if ((!btcd_up)); then
		if [[ ! $rpc_port =~ ^[0-9]+$ ]] || port_in_use "$rpc_port"; then free_port rpc_port; fi
		if [[ ! $p2p_port =~ ^[0-9]+$ ]] || port_in_use "$p2p_port" || [[ $p2p_port == "$rpc_port" ]]; then
			free_port p2p_port
		fi
		[[ -n ${NODE_RPC_PASS:-} ]] || NODE_RPC_PASS="$(random_secret)"
	fi
	if ((!nats_up)); then
		if [[ ! $nats_port =~ ^[0-9]+$ ]] || port_in_use "$nats_port"; then free_port nats_port; fi
		if [[ ! $mon_port =~ ^[0-9]+$ ]] || port_in_use "$mon_port" || [[ $mon_port == "$nats_port" ]]; then
			free_port mon_port
		fi
		[[ -n ${NATS_PASS:-} ]] || NATS_PASS="$(random_secret)"
	elif [[ ! $mon_port =~ ^[0-9]+$ ]]; then
		die "nats-server runs but $NATS_CONF has no monitoring port; run: $0 down"
	fi

	redis_port="$(port_of "${REDIS_ADDR:-}")"
	if ((!redis_up)); then
		if [[ ! $redis_port =~ ^[0-9]+$ ]] || port_in_use "$redis_port"; then free_port redis_port; fi
	fi
	REDIS_ADDR="127.0.0.1:$redis_port"

	NODE_RPC="127.0.0.1:$rpc_port"
	NODE_RPC_USER="${NODE_RPC_USER:-$RPC_USER}"
	NODE_P2P="127.0.0.1:$p2p_port"
	NATS_URL="nats://127.0.0.1:$nats_port"
	NATS_USER="${NATS_USER:-$NATS_USER_NAME}"
	NATS_MON="$mon_port"
	HASHGATE_NET=regtest
	PAYOUT_ADDRESS=$PAYOUT

	# Admin endpoints on fixed loopback ports below 32768 (not the kernel's
	# ephemeral range), kept while a daemon runs.
	local d var port
	ADMIN_VARS=()
	for d in $ALL_DAEMONS; do
		var="${d^^}_ADMIN_PORT"
		port="${!var:-}"
		if ! daemon_pid "$d" >/dev/null 2>&1; then
			if [[ ! $port =~ ^[0-9]+$ ]] || port_in_use "$port"; then free_port port; fi
		fi
		printf -v "$var" '%s' "$port"
		ADMIN_VARS+=("$var")
	done

	# The gateway's Stratum port, also fixed below 32768 and kept while it runs.
	# Not one of the admin ports just chosen.
	local stratum_port taken=" " v
	for v in "${ADMIN_VARS[@]}"; do taken+="${!v} "; done
	stratum_port="$(port_of "${STRATUM:-}")"
	if ! daemon_pid gateway >/dev/null 2>&1; then
		while [[ ! $stratum_port =~ ^[0-9]+$ ]] || [[ $taken == *" $stratum_port "* ]] ||
			port_in_use "$stratum_port"; do
			free_port stratum_port
		done
	fi
	STRATUM="127.0.0.1:$stratum_port"
	STRATUM_LISTEN=$STRATUM

	# The gateway's agent port (AGENT_LISTEN, kept while the gateway runs) and the
	# mineragent's Stratum port (AGENT_STRATUM, kept while it runs), chosen the same
	# way and not one of the ports above. A gateway that runs without an agent port
	# (started by an older devnet.sh) is restarted by start_daemons to listen on it.
	local agent_port agent_stratum_port
	taken+="$stratum_port "
	RESTART_GATEWAY=0
	agent_port="$(port_of "${AGENT_LISTEN:-}")"
	if ! daemon_pid gateway >/dev/null 2>&1 || [[ ! $agent_port =~ ^[0-9]+$ ]]; then
		while [[ ! $agent_port =~ ^[0-9]+$ ]] || [[ $taken == *" $agent_port "* ]] ||
			port_in_use "$agent_port"; do
			free_port agent_port
		done
		if daemon_pid gateway >/dev/null 2>&1; then RESTART_GATEWAY=1; fi
	fi
	taken+="$agent_port "
	agent_stratum_port="$(port_of "${AGENT_STRATUM:-}")"
	if ! daemon_pid mineragent >/dev/null 2>&1; then
		while [[ ! $agent_stratum_port =~ ^[0-9]+$ ]] || [[ $taken == *" $agent_stratum_port "* ]] ||
			port_in_use "$agent_stratum_port"; do
			free_port agent_stratum_port
		done
	fi
	AGENT_LISTEN="127.0.0.1:$agent_port"
	AGENT_UPSTREAM=$AGENT_LISTEN
	AGENT_STRATUM="127.0.0.1:$agent_stratum_port"
	AGENT_STRATUM_LISTEN=$AGENT_STRATUM
	# conf/mineragent.json reads AGENT_ADMIN_PORT, not MINERAGENT_ADMIN_PORT.
	AGENT_ADMIN_PORT=${MINERAGENT_ADMIN_PORT:-0}
	if [[ -z ${AGENT_TOKEN:-} ]]; then
		AGENT_TOKEN="$(random_secret)"
		if daemon_pid gateway >/dev/null 2>&1; then RESTART_GATEWAY=1; fi
	fi

	GATEWAY_ID=${GATEWAY_ID:-1}
	# Regtest's network difficulty is about 4.66e-10 and the gateway never sets a
	# share difficulty above it, so with any vardiff.min the gateway accepts (1e-8 and
	# up today) every devnet share is a block. A load test with shares that are not
	# blocks needs VARDIFF_MIN below 4.66e-10, once the gateway allows that.
	VARDIFF_MIN=${VARDIFF_MIN:-1e-8}
	VARDIFF_START=${VARDIFF_START:-1e-8}
}

# write_env: .devnet/ports.env (atomically, mode 600; values shell-quoted).
write_env() {
	local tmp v
	tmp="$(mktemp "$DEVNET/.ports.env.XXXXXX")"
	{
		printf '# Generated by shell/devnet.sh up; loaded by shell/*.sh (set -a; . %s).\n' "$ENV_FILE"
		for v in NODE_RPC NODE_RPC_USER NODE_RPC_PASS NODE_P2P NATS_URL NATS_USER NATS_PASS \
			HASHGATE_RUN HASHGATE_NET PAYOUT_ADDRESS REDIS_ADDR "${ADMIN_VARS[@]}" \
			STRATUM STRATUM_LISTEN GATEWAY_ID VARDIFF_MIN VARDIFF_START \
			AGENT_LISTEN AGENT_TOKEN AGENT_UPSTREAM AGENT_STRATUM AGENT_STRATUM_LISTEN AGENT_ADMIN_PORT; do
			printf '%s=%q\n' "$v" "${!v}"
		done
	} >"$tmp"
	chmod 600 "$tmp"
	mv -f -- "$tmp" "$ENV_FILE"
	export NODE_RPC NODE_RPC_USER NODE_RPC_PASS NODE_P2P NATS_URL NATS_USER NATS_PASS \
		HASHGATE_NET PAYOUT_ADDRESS REDIS_ADDR "${ADMIN_VARS[@]}" \
		STRATUM STRATUM_LISTEN GATEWAY_ID VARDIFF_MIN VARDIFF_START \
		AGENT_LISTEN AGENT_TOKEN AGENT_UPSTREAM AGENT_STRATUM AGENT_STRATUM_LISTEN AGENT_ADMIN_PORT
	HASHGATE_ENV="$ENV_FILE"
	export HASHGATE_ENV
}

# write_nats_conf: the nats-server config for the chosen ports and password.
write_nats_conf() {
	local tmp
	tmp="$(mktemp "$DEVNET/.nats.conf.XXXXXX")"
	cat >"$tmp" <<EOF
# Generated by shell/devnet.sh up.
server_name: hashgate-devnet
listen: 127.0.0.1:$(port_of "$NATS_URL")
http: 127.0.0.1:$NATS_MON
max_payload: 8MB
authorization {
  user: "$NATS_USER"
  password: "$NATS_PASS"
}
jetstream {
  store_dir: "$DEVNET/nats"
  max_memory_store: 256MB
  max_file_store: 2GB
}
EOF
	chmod 600 "$tmp"
	mv -f -- "$tmp" "$NATS_CONF"
}

start_btcd() {
	local pid
	if pid="$(proc_pid btcd btcd)"; then
		log "btcd already running (pid $pid)"
		return
	fi
	command -v btcd >/dev/null || die "btcd not found in PATH"
	mkdir -p "$BTCD_DIR/data" "$BTCD_DIR/logs"
	: >>"$BTCD_DIR/btcd.conf" # empty: keep ~/.btcd/btcd.conf out of the devnet
	log "starting btcd regtest: rpc $NODE_RPC, p2p $NODE_P2P"
	setsid nohup btcd --configfile="$BTCD_DIR/btcd.conf" --regtest --notls \
		--rpclisten="$NODE_RPC" --listen="$NODE_P2P" \
		--rpcuser="$NODE_RPC_USER" --rpcpass="$NODE_RPC_PASS" \
		--datadir="$BTCD_DIR/data" --logdir="$BTCD_DIR/logs" \
		--miningaddr="$MINING_ADDRESS" </dev/null >>"$RUN/btcd.log" 2>&1 &
	printf '%s\n' "$!" >"$RUN/btcd.pid"
}

start_nats() {
	local pid
	if pid="$(proc_pid nats nats-server)"; then
		log "nats-server already running (pid $pid)"
		return
	fi
	command -v nats-server >/dev/null || die "nats-server not found in PATH"
	mkdir -p "$DEVNET/nats"
	write_nats_conf
	log "starting nats-server: $NATS_URL, monitoring http://127.0.0.1:$NATS_MON"
	setsid nohup nats-server -c "$NATS_CONF" </dev/null >>"$RUN/nats.log" 2>&1 &
	printf '%s\n' "$!" >"$RUN/nats.pid"
}

start_redis() {
	local pid
	if pid="$(proc_pid redis redis-server)"; then
		log "redis-server already running (pid $pid)"
		return
	fi
	command -v redis-server >/dev/null || die "redis-server not found in PATH"
	mkdir -p "$DEVNET/redis"
	log "starting redis-server: $REDIS_ADDR"
	# Append-only with fsync on every write: what Redis acknowledged survives
	# a restart, as the statistics pipeline's exactly-once accounting needs.
	setsid nohup redis-server --bind 127.0.0.1 --port "$(port_of "$REDIS_ADDR")" --dir "$DEVNET/redis" \
		--appendonly yes --appendfsync always --save "" --protected-mode yes \
		</dev/null >>"$RUN/redis.log" 2>&1 &
	printf '%s\n' "$!" >"$RUN/redis.pid"
}

wait_redis() {
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		proc_pid redis redis-server >/dev/null || fail_with_log "$RUN/redis.log" "redis-server exited while starting"
		[[ "$(redis-cli -h 127.0.0.1 -p "$(port_of "$REDIS_ADDR")" ping 2>/dev/null)" == PONG ]] && return 0
		sleep 0.2
	done
	fail_with_log "$RUN/redis.log" "redis-server on $REDIS_ADDR not answering after 30s"
}

wait_btcd() {
	local deadline=$((SECONDS + 60)) pid
	while ((SECONDS < deadline)); do
		pid="$(proc_pid btcd btcd)" || fail_with_log "$RUN/btcd.log" "btcd exited while starting"
		btcd_rpc getblockcount >/dev/null 2>&1 && return 0
		sleep 0.3
	done
	fail_with_log "$RUN/btcd.log" "btcd RPC on $NODE_RPC not answering after 60s"
}

wait_nats() {
	local deadline=$((SECONDS + 30)) url="http://127.0.0.1:$NATS_MON/healthz"
	while ((SECONDS < deadline)); do
		proc_pid nats nats-server >/dev/null || fail_with_log "$RUN/nats.log" "nats-server exited while starting"
		[[ "$(http_code "$url")" == 200 ]] && return 0
		sleep 0.2
	done
	fail_with_log "$RUN/nats.log" "nats-server not healthy ($url) after 30s"
}

mature_chain() {
	local height
	height="$(btcd_rpc getblockcount)" || fail_with_log "$RUN/btcd.log" "getblockcount failed"
	if ((height < MATURE_HEIGHT)); then
		log "height $height: generating $((MATURE_HEIGHT - height)) blocks so coinbases mature"
		btcd_rpc generate "[$((MATURE_HEIGHT - height))]" 300 >/dev/null ||
			fail_with_log "$RUN/btcd.log" "generate failed"
		height="$(btcd_rpc getblockcount)" || fail_with_log "$RUN/btcd.log" "getblockcount failed"
		((height >= MATURE_HEIGHT)) || die "height is $height after generate"
	fi
	log "btcd at height $height"
}

start_daemons() {
	local d pid admin
	for d in $(daemon_list); do
		if ! daemon_buildable "$d"; then
			warn "$d: no $HASHGATE_ROOT/$d/main.go yet, skipping"
			continue
		fi
		if [[ ! -f $HASHGATE_CONF/$d.json ]]; then
			warn "$d: no config $HASHGATE_CONF/$d.json, skipping"
			continue
		fi
		build_daemon "$d" || die "build of $d failed"
		if pid="$(daemon_pid "$d")" && admin="$(daemon_admin "$d")" &&
			[[ "$(http_code "$admin/healthz")" != 000 ]]; then
			if [[ $d == gateway ]] && ((RESTART_GATEWAY)); then
				log "gateway (pid $pid) runs without the agent port or token now in $ENV_FILE: restarting it"
				# The test miners first: they hang up themselves, so the gateway's Stratum
				# port is not left in TIME_WAIT (which its new listener cannot bind).
				stop_miners
			else
				log "$d already running (pid $pid); to run the new build: shell/restart.sh $d"
				continue
			fi
		fi
		"$SHELL_DIR/restart.sh" "$d" || die "$d failed to start (log: $RUN/$d.log)"
	done
}

start_watchdog() {
	local pid
	if pid="$(proc_pid check_alive check_alive.sh)"; then
		log "check_alive.sh --loop already running (pid $pid)"
		return
	fi
	setsid nohup "$SHELL_DIR/check_alive.sh" --loop </dev/null >>"$RUN/check_alive.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$RUN/check_alive.pid"
	sleep 0.5
	pid_alive "$pid" || fail_with_log "$RUN/check_alive.log" "check_alive.sh --loop exited at once"
	log "check_alive.sh --loop started (pid $pid, log $RUN/check_alive.log)"
}

# build_miner: bin/hgminer from tools/hgminer, stamped like the daemons.
build_miner() {
	local commit mod flags=()
	commit="$(git -C "$HASHGATE_ROOT" rev-parse --short=12 HEAD 2>/dev/null)" || commit=""
	mod="$(awk '$1 == "module" {print $2; exit}' "$HASHGATE_ROOT/pkg/go.mod" 2>/dev/null)" || mod=""
	if [[ -n $commit && -n $mod ]]; then flags=(-ldflags "-X $mod/version.Commit=$commit"); fi
	log "building bin/hgminer"
	(cd "$HASHGATE_ROOT" && go build "${flags[@]}" -o bin/hgminer ./tools/hgminer)
}

# The test miners: "NAME WORKER DAEMON", where NAME is the pid/log file name in $RUN and
# DAEMON the daemon whose Stratum port it mines on (miner_stratum).
MINERS=("hgminer $MINER_USER gateway" "hgminer-agent $AGENT_MINER_USER mineragent")

# miner_stratum DAEMON: host:port of DAEMON's Stratum port (from ports.env).
miner_stratum() {
	case $1 in
	gateway) printf '%s\n' "${STRATUM:-?}" ;;
	mineragent) printf '%s\n' "${AGENT_STRATUM:-?}" ;;
	esac
}

# start_miners: every test miner (built once).
start_miners() {
	local m built=0
	if [[ ${HASHGATE_MINER:-1} == 0 ]]; then
		log "HASHGATE_MINER=0: not starting the test miners"
		return
	fi
	if [[ ! -f $HASHGATE_ROOT/tools/hgminer/main.go ]]; then
		warn "no $HASHGATE_ROOT/tools/hgminer: not starting the test miners"
		return
	fi
	for m in "${MINERS[@]}"; do
		# shellcheck disable=SC2086 # "NAME WORKER DAEMON"
		start_miner $m
	done
}

# start_miner NAME WORKER DAEMON: one throttled `hgminer mine` as WORKER against DAEMON's
# Stratum port; pid and log in $RUN/NAME.pid, $RUN/NAME.log. Uses/sets `built`.
start_miner() {
	local name=$1 user=$2 d=$3 stratum pid
	stratum="$(miner_stratum "$d")"
	if pid="$(proc_pid "$name" hgminer)"; then
		log "$name already running (pid $pid)"
		return
	fi
	if ! daemon_pid "$d" >/dev/null 2>&1; then
		warn "$d is not running: not starting the test miner $name"
		return
	fi
	if ((!built)); then
		build_miner || die "build of hgminer failed"
		built=1
	fi
	setsid nohup "$HASHGATE_ROOT/bin/hgminer" mine -url "stratum+tcp://$stratum" -user "$user" \
		-rate "$MINER_RATE" -share-rate "$MINER_SHARE_RATE" </dev/null >>"$RUN/$name.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$RUN/$name.pid"
	sleep 0.5
	pid_alive "$pid" || fail_with_log "$RUN/$name.log" "$name exited at once"
	log "$name started (pid $pid, worker $user on $stratum, log $RUN/$name.log)"
}

stop_miners() {
	local m name pid
	for m in "${MINERS[@]}"; do
		name=${m%% *}
		if pid="$(proc_pid "$name" hgminer)"; then stop_pid "$pid" "$name" 10 || true; fi
		rm -f -- "$RUN/$name.pid"
	done
}

# wait_agent_link: wait until the mineragent (if it runs) is linked to the gateway, so
# its miner gets work at once.
wait_agent_link() {
	local deadline=$((SECONDS + 30)) admin
	daemon_pid mineragent >/dev/null 2>&1 || return 0
	while ((SECONDS < deadline)); do
		if admin="$(daemon_admin mineragent)" && [[ "$(agent_link "$admin" | jq -r .linked 2>/dev/null)" == true ]]; then
			log "mineragent linked to the gateway's agent port $AGENT_LISTEN"
			return 0
		fi
		sleep 0.2
	done
	fail_with_log "$RUN/mineragent.log" "mineragent not linked to the gateway ($AGENT_LISTEN) after 30s"
}

# agent_link ADMIN: the "upstream" object of the mineragent's /status.
agent_link() {
	curl -s --max-time "${HASHGATE_PROBE_TIMEOUT:-2}" "$1/status" 2>/dev/null | jq -c '.upstream // empty' 2>/dev/null
}

# miner_counts NAME: the counters of test miner NAME's last statistics line.
miner_counts() {
	local line
	line="$(tail -n 200 "$RUN/$1.log" 2>/dev/null | grep -F '"msg":"miner stats"' | tail -n 1)" || true
	[[ -n $line ]] || return 1
	jq -r '"accepted \(.accepted), rejected \(.rejected), block candidates \(.block_candidates)"' <<<"$line" 2>/dev/null
}

summary() {
	local d admin m name user
	cat <<EOF

hashgate devnet is up (everything under $DEVNET)
  btcd regtest   rpc $NODE_RPC (user $NODE_RPC_USER), p2p $NODE_P2P, height $(btcd_rpc getblockcount || echo '?')
  nats-server    $NATS_URL (user $NATS_USER), monitoring http://127.0.0.1:$NATS_MON
  redis-server   $REDIS_ADDR (per-minute hashrate: redis-cli -p ${REDIS_ADDR##*:} hgetall btc:s:devnet)
  env            $ENV_FILE   (load: set -a; . $ENV_FILE; set +a)
  run dir        $RUN
EOF
	for d in $(daemon_list); do
		if admin="$(daemon_admin "$d")"; then
			printf '  %-14s admin %s   log %s\n' "$d" "$admin" "$RUN/$d.log"
		else
			printf '  %-14s not started\n' "$d"
		fi
	done
	for m in "${MINERS[@]}"; do
		read -r name user d <<<"$m"
		if proc_pid "$name" hgminer >/dev/null; then
			printf '  %-14s %s mining on stratum+tcp://%s (%s shares/s)   log %s\n' "$name" "$user" \
				"$(miner_stratum "$d")" "$MINER_SHARE_RATE" "$RUN/$name.log"
		else
			printf '  %-14s not started\n' "$name"
		fi
	done
	cat <<EOF
  stratum        stratum+tcp://$STRATUM (gateway; vardiff min $VARDIFF_MIN, start $VARDIFF_START)
  agent stratum  stratum+tcp://$AGENT_STRATUM (mineragent, linked to the gateway's agent port $AGENT_LISTEN; same vardiff)
  watchdog       check_alive.sh --loop, log $RUN/check_alive.log
  btcctl         btcctl --regtest --notls -s $NODE_RPC -u $NODE_RPC_USER -P "\$NODE_RPC_PASS" getblockcount
Stop: shell/devnet.sh down   (keeps .devnet; down --clean removes it)
Status: shell/devnet.sh status
EOF
}

cmd_up() {
	[[ $# -eq 0 ]] || usage
	"$SHELL_DIR/deps.sh" || die "deps.sh failed"
	mkdir -p "$RUN"
	choose_config
	write_env
	start_btcd
	start_nats
	start_redis
	wait_btcd
	wait_nats
	wait_redis
	mature_chain
	start_daemons
	wait_agent_link
	start_miners
	start_watchdog
	summary
}

# ---------------------------------------------------------------------------
# down

stop_infra() {
	local pid
	if pid="$(proc_pid nats nats-server)"; then stop_pid "$pid" nats-server 15 || true; fi
	if pid="$(proc_pid btcd btcd)"; then stop_pid "$pid" btcd 30 || true; fi
	if pid="$(proc_pid redis redis-server)"; then stop_pid "$pid" redis-server 15 || true; fi
	rm -f -- "$RUN/nats.pid" "$RUN/btcd.pid" "$RUN/redis.pid"
}

cmd_down() {
	local clean=0 pid d order=() i
	case ${1:-} in
	"") ;;
	--clean) clean=1 ;;
	*) usage ;;
	esac

	# 1. The test miners, then the watchdog, so it does not restart what we stop.
	stop_miners
	if pid="$(proc_pid check_alive check_alive.sh)"; then
		stop_pid "$pid" check_alive.sh 10 || true
	fi
	rm -f -- "$RUN/check_alive.pid"

	# 2. Daemons in reverse start order; the lock waits out a restart in progress.
	read -r -a order <<<"$ALL_DAEMONS ${HASHGATE_DAEMONS:-}"
	for ((i = ${#order[@]} - 1; i >= 0; i--)); do
		d=${order[i]}
		[[ -e $RUN/$d.pid || -e $RUN/$d.spawn || -e $RUN/$d.admin ]] || continue
		daemon_lock "$d" $((${HASHGATE_STOP_TIMEOUT:-15} + ${HASHGATE_READY_TIMEOUT:-30} + 60)) ||
			warn "could not lock $d; stopping it anyway"
		stop_daemon "$d" || warn "could not stop $d"
		exec 9>&-
	done

	# 3. Then the bus and the node.
	stop_infra

	if ((clean)); then
		log "removing $DEVNET"
		rm -rf -- "$DEVNET"
	else
		log "devnet stopped; $DEVNET kept (ports.env, logs, data; down --clean removes it)"
	fi
}

# ---------------------------------------------------------------------------
# status

cmd_status() {
	local rc=0 name prog pid d admin body code st height m user link
	[[ $# -eq 0 ]] || usage
	if [[ ! -d $DEVNET ]]; then
		echo "devnet: not set up ($DEVNET missing)"
		return 1
	fi
	if [[ -f $ENV_FILE ]]; then
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
		HASHGATE_RUN="$RUN"
	fi
	printf '%-14s %-8s %s\n' PROCESS PID STATE
	for name in btcd:btcd nats:nats-server redis:redis-server check_alive:check_alive.sh; do
		prog=${name#*:} name=${name%%:*}
		if pid="$(proc_pid "$name" "$prog")"; then
			printf '%-14s %-8s alive\n' "$name" "$pid"
		else
			printf '%-14s %-8s %s\n' "$name" "$(read_pid "$RUN/$name.pid" || echo -)" down
			rc=1
		fi
	done
	for d in $(daemon_list); do
		if ! pid="$(daemon_pid "$d")"; then
			if [[ -e $RUN/$d.pid ]]; then
				printf '%-14s %-8s dead (stale pid file)\n' "$d" "$(read_pid "$RUN/$d.pid" || echo -)"
				rc=1
			else
				printf '%-14s %-8s not running\n' "$d" -
			fi
			continue
		fi
		if ! admin="$(daemon_admin "$d")"; then
			printf '%-14s %-8s alive, no admin file yet\n' "$d" "$pid"
			continue
		fi
		body="$(curl -s --max-time "${HASHGATE_PROBE_TIMEOUT:-2}" -w '\n%{http_code}' "$admin/healthz" 2>/dev/null)" || true
		code="${body##*$'\n'}"
		body="${body%$'\n'*}"
		st="$(jq -r '.status // empty' <<<"$body" 2>/dev/null || true)"
		printf '%-14s %-8s alive, %s/healthz %s %s\n' "$d" "$pid" "$admin" "${code:-000}" "${st:-$body}"
		[[ ${code:-000} != 000 ]] || rc=1
	done
	for m in "${MINERS[@]}"; do
		read -r name user d <<<"$m"
		if pid="$(proc_pid "$name" hgminer)"; then
			printf '%-14s %-8s alive, worker %s on %s: %s\n' "$name" "$pid" "$user" "$(miner_stratum "$d")" \
				"$(miner_counts "$name" || echo 'no statistics yet')"
		elif [[ -e $RUN/$name.pid ]]; then
			printf '%-14s %-8s dead (stale pid file, log %s)\n' "$name" "$(read_pid "$RUN/$name.pid" || echo -)" \
				"$RUN/$name.log"
			rc=1
		else
			printf '%-14s %-8s not running\n' "$name" -
		fi
	done
	if admin="$(daemon_admin mineragent)" && daemon_pid mineragent >/dev/null 2>&1; then
		link="$(agent_link "$admin")" || link=""
		if [[ -z $link ]]; then
			echo "mineragent link: unknown (no answer from $admin/status)"
		else
			jq -r '"mineragent link: " + (if .linked then "linked to \(.server) (up \(.since_s | floor)s, \(.miners) miners, shares \(.results | tojson))"
				else "NOT linked (down \(.since_s | floor)s, last gateway \(.server | if . == "" then "none" else . end))" end)' <<<"$link"
		fi
	fi
	if [[ -n ${NODE_RPC:-} ]] && height="$(btcd_rpc getblockcount 2>/dev/null)"; then
		echo "block height: $height"
	else
		echo "block height: unknown (btcd not answering)"
		rc=1
	fi
	return "$rc"
}

# ---------------------------------------------------------------------------

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
status) cmd_status "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
