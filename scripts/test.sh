#!/usr/bin/env bash
# Set up (idempotent), build, run the whole test suite, print "N passed, N failed" from the test results.
# Exit code is non-zero when any test failed or the build failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

results=TestResults
rm -rf "$results"
dotnet build NnUnetCluster.sln -c Release --nologo -v q -clp:ErrorsOnly || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

status=0
dotnet test NnUnetCluster.sln -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" \
  --blame-hang-timeout 10m || status=$?

# NIfTI files written by our writer, read back by nibabel (tests leave them in $results/nibabel-verify).
if [ -d "$results/nibabel-verify" ] && /usr/bin/python3 -c 'import nibabel' 2>/dev/null; then
  if /usr/bin/python3 tests/fixtures/make_nifti_fixtures.py --verify "$results/nibabel-verify"; then nib_pass=1; nib_fail=0; else nib_pass=0; nib_fail=1; status=1; fi
else
  nib_pass=0; nib_fail=0
fi

read -r passed failed < <(
  cat "$results"/*.trx 2>/dev/null | grep -o '<Counters [^>]*' |
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); gsub(/"/, "", kv[2]); if (kv[1] == "passed") p += kv[2]; if (kv[1] == "failed") f += kv[2]; } }
       END { printf "%d %d\n", p, f }')
passed=$((passed + nib_pass)); failed=$((failed + nib_fail))
[ "$failed" -gt 0 ] && status=1
trx_count=$(ls "$results"/*.trx 2>/dev/null | wc -l)
[ "$trx_count" -eq 0 ] && { status=1; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
exit $status
