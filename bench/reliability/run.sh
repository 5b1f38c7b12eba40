#!/usr/bin/env bash
# Reliability timings (issue 13) from the fault tests that take them on the way, each run ROUNDS times (default 3):
#   worker cut -> its fold running elsewhere        (KernelPartitionTests: iptables cut, shipped failure detection)
#   coordinator restart -> every worker re-registered (CoordinatorCrashTests: 60 s outage;
#                                                      ImpairedNetworkTests: 15 s outage over 200 ms / 5 % loss links)
# Needs root (iptables, NFQUEUE, another Unix user), as the tests do. Prints min / median / max of each.
#   bench/reliability/run.sh [ROUNDS]
# The dispatch throughput with TLS on vs off is bench/scheduler/run.sh throughput-tls.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-3}"
cd "$root"
dotnet build NnUnetCluster.sln -c Release --nologo -v q -clp:ErrorsOnly
results="$root/TestResults/reliability-measurements.tsv"
mkdir -p "$root/TestResults"
start_line=$(( $( [ -f "$results" ] && wc -l < "$results" || echo 0 ) + 1 ))
echo "machine: $(nproc) cores, $(uname -m), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds ..."
  dotnet test tests/NnUnet.Cluster.Tests/NnUnet.Cluster.Tests.csproj -c Release --no-build --nologo -v q \
    --filter "FullyQualifiedName~KernelPartitionTests|FullyQualifiedName~CoordinatorCrashTests|FullyQualifiedName~ImpairedNetworkTests.Coordinator" \
    | grep -E "^(Passed!|Failed!)|Failed " || true
done
tail -n "+$start_line" "$results" | /usr/bin/python3 -c '
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in sys.stdin:
    _, what, seconds, conditions = line.rstrip("\n").split("\t")
    runs[(what, conditions)].append(float(seconds))
for (what, conditions), values in runs.items():
    print(f"{what}: median {statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, {len(values)} runs)\n    {conditions}")
'
