#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time:
#   scripts/fuzz.sh [TARGET...]          (default: requests data policy)
# FUZZ_SECONDS (default 60) is the total run time, split evenly between the targets.
#
# - cargo-fuzz is installed when missing: `cargo install cargo-fuzz --locked` (about 1.5 min
#   on 2 cores, once per machine).
# - cargo-fuzz passes nightly-only rustc flags (-Zsanitizer=address); the stable toolchain
#   accepts them with RUSTC_BOOTSTRAP=1, so no nightly is needed.
# - The instrumented build (release, debug assertions and overflow checks, AddressSanitizer)
#   goes to FUZZ_TARGET_DIR (default ~/.cache/bpfmapd-fuzz-target), outside the work tree,
#   so that later runs on the same machine reuse it: the first build takes several minutes,
#   later ones seconds.
# - Each target starts from its committed seeds (fuzz/corpus/<target>/, only read) plus
#   what earlier runs found (FUZZ_TARGET_DIR/corpus/<target>/, written).
# - The value checks create a few small BPF maps, so run as root (as CI does); without
#   BPF they are skipped and the rest still runs.
# A crash, panic, timeout or leak fails the script; the input is kept under
# fuzz/artifacts/<target>/ and the command to reproduce it is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(requests data policy)
fi
total=${FUZZ_SECONDS:-60}
per=$((total / ${#targets[@]}))
[ "$per" -ge 1 ] || per=1
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bpfmapd-fuzz-target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
build=(-O --debug-assertions --codegen-units 16 --target-dir "$target_dir")

start=$(date +%s)
cargo fuzz build "${build[@]}" 2>&1 | tail -n 3 || {
    echo "fuzz.sh: the fuzz build failed" >&2
    exit 1
}
echo "fuzz.sh: built in $(($(date +%s) - start)) s; fuzzing ${targets[*]} for ${per} s each"

failed=()
for t in "${targets[@]}"; do
    work="$target_dir/corpus/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    log=$(mktemp)
    if cargo fuzz run "${build[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -Eo '^Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo "?")
        cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)
        echo "fuzz.sh: $t: ok ($runs runs, $cov)"
    else
        echo "fuzz.sh: $t: FAILED" >&2
        grep -E -A 12 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
        artifact=$(grep -Eo 'fuzz/artifacts/[^ ]+' "$log" | tail -n 1 || true)
        if [ -n "$artifact" ]; then
            echo "fuzz.sh: reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${build[*]} $t $artifact" >&2
        fi
        failed+=("$t")
    fi
    rm -f "$log"
done

# The targets' scratch trees (fuzz/src/lib.rs), left by processes that have ended.
for d in "${TMPDIR:-/tmp}"/bpfmapd-fuzz-*; do
    [ -d "$d" ] || continue
    kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
done

echo "fuzz.sh: done in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failing targets: ${failed[*]}" >&2
    exit 1
fi
