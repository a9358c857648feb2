#!/usr/bin/env bash
# Runs every test of the workspace against the real kernel (needs root):
#   scripts/test.sh [extra cargo test args, e.g. -p bpfmap-tests --test dump]
# 1. scripts/setup.sh installs what is missing (fast when nothing is);
# 2. builds every binary (the end-to-end tests run the real bpfmapd and bpfmapctl);
# 3. cargo test --workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# pyenv and pip may put grpcurl in places a non-login shell does not have on PATH.
for d in "$HOME/.local/bin" "$HOME/.pyenv/shims"; do
    case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$PATH:$d" ;; esac
done
export PATH

cargo build --workspace --bins
cargo test --workspace "$@"
