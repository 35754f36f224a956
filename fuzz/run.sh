#!/usr/bin/env bash
# A short fuzzing run of every target (CI): builds them with nightly, runs each for a few seconds on its committed
# corpus (fuzz/corpus/<target>), and fails on any crash, panic or input taking longer than 5 s (a hang).
# New corpus entries go to fuzz/target/run/corpus (not committed); crashing inputs to fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [seconds-per-target]   (default 20)
#
# Reproduce a finding:  cd fuzz && cargo +nightly fuzz run -s none -a <target> artifacts/<target>/crash-…
# Longer runs:          cd fuzz && cargo +nightly fuzz run -s none -a <target> corpus/<target> -- -max_total_time=600
# Shrink a corpus:      cd fuzz && cargo +nightly fuzz cmin -s none -a <target>
#
# No sanitizer (`-s none`): the workspace forbids unsafe code, so AddressSanitizer finds nothing the panics do not,
# and it slows both the build and the run. `-a` keeps debug assertions (integer overflow panics) in the release build.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
flags=(-s none -a)

start=$SECONDS
printf '==> building the fuzz targets\n'
cargo +nightly fuzz build "${flags[@]}"
printf 'built in %ss\n' $((SECONDS - start))

work=target/run
rm -rf "$work"
mkdir -p "$work/tmp"
# The dialects run on a scratch store; it lives here, not in /tmp.
TMPDIR="$(pwd)/$work/tmp"
export TMPDIR

failed=()
for t in $(cargo +nightly fuzz list); do
  mkdir -p "$work/corpus/$t"
  log="$work/$t.log"
  if cargo +nightly fuzz run "${flags[@]}" "$t" "$work/corpus/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
  printf '%-18s %-6s %10s executions %6s new corpus entries\n' "$t" "$status" "${execs:-?}" "${added:-?}"
  if [ "$status" = FAILED ]; then
    # The panic message (or libFuzzer's verdict: timeout, out of memory) and where the input was written.
    { grep -m 1 -A 1 "panicked at" "$log" || grep -m 1 "ERROR: libFuzzer" "$log" || tail -n 20 "$log"; } | cut -c 1-600
    grep -m 1 "Test unit written" "$log" || true
  fi
done
printf 'fuzzing took %ss\n' $((SECONDS - start))
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzzing found problems in: %s (inputs in fuzz/artifacts/)\n' "${failed[*]}"
  exit 1
fi
