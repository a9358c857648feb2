#!/usr/bin/env bash
# The benchmark: bpfmapd beside the kernel's floor, bpftool and a bare tonic service, in one
# run (needs root; about 2-3 minutes on 2 cores). Builds the release binaries, then runs
#   target/release/bpfmap-bench [--entries N] [--big N] [--runs N] [--json PATH] [--smoke]
# Prints the tables and writes target/bench/latest.json (see bench/src/main.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p bpfmapd -p bpfmap-client -p bpfmap-bench --bins
exec target/release/bpfmap-bench "$@"
