#!/usr/bin/env bash
# Measures ReadEvents: ring-buffer records per second delivered to one gRPC subscriber of a
# release bpfmapd, against the rate the BPF program produced and a local libbpf consumer.
#   scripts/events_rate.sh [SECONDS] [BURST]     (needs root; see tests/src/bin/bpfmap-events-rate.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p bpfmapd -p bpfmap-tests --bin bpfmapd --bin bpfmap-events-rate
BPFMAPD_BIN="$PWD/target/release/bpfmapd" target/release/bpfmap-events-rate "$@"
