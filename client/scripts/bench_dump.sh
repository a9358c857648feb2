#!/usr/bin/env bash
# Compares `bpfmapctl map dump` with `bpftool map dump` on one map of N entries (default
# 1,000,000; 4-byte keys, 8-byte values), both to /dev/null, in the same run. Needs root.
#   client/scripts/bench_dump.sh [N]
# Builds release binaries, starts a private bpfmapd on its own bpffs, fills the map with
# `bpfmapctl map load` (raw snapshot), then times each dump three times.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}

cargo build --release -q -p bpfmapd -p bpfmap-client --bins
C=$PWD/target/release/bpfmapctl
D=$PWD/target/release/bpfmapd

work=$(mktemp -d)
mkdir "$work/fs"
mount -t bpf bpf "$work/fs"
"$D" --listen "unix:$work/d.sock" --bpffs-root "$work/fs/bpfmapd" >"$work/d.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; umount "$work/fs"; rm -rf "$work"; }
trap cleanup EXIT
export BPFMAP_SERVER="unix:$work/d.sock"
for _ in $(seq 50); do [ -S "$work/d.sock" ] && break; sleep 0.1; done

python3 - "$N" "$work/seed.bin" <<'PY'
import struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "wb") as f:
    f.write(b"BPFMRAW1" + struct.pack("<6I", 4, 8, 8, 0, 1, 0) + struct.pack("<Q", n))
    f.write(b"".join(struct.pack("<IQ", i, i * 3) for i in range(n)))
PY
"$C" map create bench --type hash --key-size 4 --value-size 8 --entries "$N" >/dev/null
"$C" map load bench --input "$work/seed.bin"
pin="$work/fs/bpfmapd/bench"

t() { local TIMEFORMAT=%R; { time "$@" >/dev/null 2>&1; } 2>&1; }
printf '%-36s %s\n' "command (to /dev/null)" "seconds (3 runs)"
for label in "bpfmapctl map dump" "bpfmapctl -j map dump" "bpfmapctl map dump --format raw" \
             "bpftool map dump" "bpftool -j map dump"; do
    case $label in
        "bpfmapctl map dump") cmd=("$C" map dump bench) ;;
        "bpfmapctl -j map dump") cmd=("$C" -j map dump bench) ;;
        "bpfmapctl map dump --format raw") cmd=("$C" map dump bench --format raw) ;;
        "bpftool map dump") cmd=(bpftool map dump pinned "$pin") ;;
        "bpftool -j map dump") cmd=(bpftool -j map dump pinned "$pin") ;;
    esac
    printf '%-36s %s %s %s\n' "$label" "$(t "${cmd[@]}")" "$(t "${cmd[@]}")" "$(t "${cmd[@]}")"
done
