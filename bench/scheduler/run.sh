#!/usr/bin/env bash
# Scheduler benchmarks (real actors, simulated backend): makespan vs lower bound on 2..64 GPUs (FIFO peer),
# dispatch throughput (10,000 jobs, 256 workers, 4 ActorSystems), journal recovery (~10,000 events).
#   bench/scheduler/run.sh [all|makespan|makespan-sim|throughput|throughput-tls|recovery]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dotnet build "$here/SchedulerBench.csproj" -c Release -v q -clp:ErrorsOnly
echo "machine: $(nproc) cores, $(uname -m), $(dotnet --version)"
dotnet "$here/bin/Release/net10.0/SchedulerBench.dll" "${1:-all}"
