#!/usr/bin/env bash
#
# shell/deps.sh - install what hashgate's builds, tests and devnet need. Idempotent.
#
# Usage: shell/deps.sh
#
# Debian packages (installed only when `dpkg -s` says they are missing; `apt-get update`
# runs once first in that case; sudo is used when not root):
#   libzmq3-dev pkg-config gcc libc6-dev curl jq shellcheck redis-server
#   (gcc/libc6-dev: cgo, which `go test -race` and the ZMQ binding need)
# Go tools, installed into $(go env GOPATH)/bin (or GOBIN) when missing or built from a
# different version:
#   btcd, btcctl   github.com/btcsuite/btcd          v0.24.2
#   nats-server    github.com/nats-io/nats-server/v2 v2.15.2
#
# Non-interactive: works with CI=true and no stdin. Prints what it installed.
set -euo pipefail
# shellcheck source=shell/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(libzmq3-dev pkg-config gcc libc6-dev curl jq shellcheck redis-server)

# Go tools: "<binary> <package path> <module path> <version>"; packages of one module
# at one version are installed together.
GO_TOOLS=(
	"btcd github.com/btcsuite/btcd github.com/btcsuite/btcd v0.24.2"
	"btcctl github.com/btcsuite/btcd/cmd/btcctl github.com/btcsuite/btcd v0.24.2"
	"nats-server github.com/nats-io/nats-server/v2 github.com/nats-io/nats-server/v2 v2.15.2"
)

installed=()

# ---------------------------------------------------------------------------
# Debian packages

dpkg_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		# -n: never wait for a password prompt that nobody will answer (CI, no tty).
		if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
	else
		die "need root to run: $* (not root and no sudo)"
	fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg_installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
	command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get"
	log "installing Debian packages: ${missing[*]}"
	apt_opts=(-q -o DPkg::Lock::Timeout=300)
	as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update </dev/null ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
		--no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null ||
		die "apt-get install ${missing[*]} failed"
	for p in "${missing[@]}"; do
		dpkg_installed "$p" || die "package $p still not installed"
		installed+=("apt:$p")
	done
fi

# ---------------------------------------------------------------------------
# Go tools

command -v go >/dev/null 2>&1 || die "go not found (expected in PATH or /usr/local/go/bin)"
gobin="$(go env GOBIN)"
if [[ -z $gobin ]]; then
	gopath="$(go env GOPATH)"
	gobin="${gopath%%:*}/bin"
fi

# tool_ok BIN PKG MOD VERSION: BIN exists in gobin and was built from PKG at MOD@VERSION.
tool_ok() {
	local bin=$1 pkg=$2 mod=$3 version=$4 info
	[[ -x $gobin/$bin ]] || return 1
	info="$(go version -m "$gobin/$bin" 2>/dev/null)" || return 1
	grep -qE "^[[:space:]]*path[[:space:]]+${pkg}\$" <<<"$info" &&
		grep -qE "^[[:space:]]*mod[[:space:]]+${mod}[[:space:]]+${version}([[:space:]]|\$)" <<<"$info"
}

declare -A to_install=() # "mod version" -> space-separated pkg@version list
for t in "${GO_TOOLS[@]}"; do
	read -r bin pkg mod version <<<"$t"
	if ! tool_ok "$bin" "$pkg" "$mod" "$version"; then
		to_install["$mod $version"]+=" $pkg@$version"
	fi
done
for key in "${!to_install[@]}"; do
	read -r -a pkgs <<<"${to_install[$key]}"
	log "go install ${pkgs[*]} (into $gobin)"
	# Outside the repository, so go.work plays no part; -buildvcs off for the module cache.
	(cd / && GOFLAGS=-buildvcs=false GOBIN="$gobin" go install "${pkgs[@]}" </dev/null) ||
		die "go install ${pkgs[*]} failed"
	installed+=("${pkgs[@]}")
done
for t in "${GO_TOOLS[@]}"; do
	read -r bin pkg mod version <<<"$t"
	tool_ok "$bin" "$pkg" "$mod" "$version" || die "$gobin/$bin is not $mod $version after install"
done

if ((${#installed[@]})); then
	log "installed: ${installed[*]}"
else
	log "all dependencies present, nothing installed"
fi
