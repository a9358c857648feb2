#!/usr/bin/env bash
# Runs every test of the workspace against the real kernel (needs root):
#   scripts/test.sh [extra cargo test args, e.g. -p bpfmap-tests --test dump -- --nocapture]
# 1. scripts/setup.sh installs what is missing (fast when nothing is);
# 2. builds every binary (the end-to-end tests run the real bpfmapd and bpfmapctl);
# 3. cargo test --workspace --no-fail-fast (every test binary runs even when one fails);
#    with -p/--package among the arguments, only those packages.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# pyenv and pip may put grpcurl in places a non-login shell does not have on PATH.
for d in "$HOME/.local/bin" "$HOME/.pyenv/shims"; do
    case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$PATH:$d" ;; esac
done
export PATH

cargo build --workspace --bins

scope=(--workspace)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p | -p* | --package | --package=*) scope=() ;;
    esac
done
cargo test "${scope[@]}" --no-fail-fast "$@"
