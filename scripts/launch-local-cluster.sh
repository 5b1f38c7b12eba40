#!/usr/bin/env bash
# Starts one coordinator and two worker processes of `nnunet` on 127.0.0.1 and waits for the sweep to finish.
#
#   scripts/launch-local-cluster.sh DATASET [extra sweep options...]
#   e.g. nnUNet_results=/tmp/res scripts/launch-local-cluster.sh Dataset004_Hippocampus -c 2d,3d_fullres --folds 0,1 --epochs 5 --simulate
#
# Environment: NNUNET (command to run nnunet; default: the Release build of src/NnUnet.Cli via dotnet),
# PORT (coordinator port, default 4053), WORKER_ARGS (per worker, default "--cpu 1"; add --simulate to simulate),
# LOG_DIR (default: ./cluster-logs). Logs: LOG_DIR/{coordinator,worker1,worker2}.log. Ctrl-C stops all three.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 1 ]]; then sed -n '2,10p' "$0"; exit 2; fi
dataset="$1"; shift
port="${PORT:-4053}"
log_dir="${LOG_DIR:-$PWD/cluster-logs}"
mkdir -p "$log_dir"
if [[ -z "${NNUNET:-}" ]]; then
  dll="$here/src/NnUnet.Cli/bin/Release/net10.0/nnunet.dll"
  [[ -f "$dll" ]] || dotnet build "$here/src/NnUnet.Cli" -c Release -v q -clp:ErrorsOnly
  NNUNET="dotnet $dll"
fi
# what the workers must share with the coordinator: --simulate, and how they are admitted (--insecure, or the
# credential in the coordinator's results folder or --cluster-secret folder)
simulate=""; admission=(); prev=""
for a in "$@"; do
  [[ "$a" == "--simulate" ]] && simulate="--simulate"
  [[ "$a" == "--insecure" ]] && admission=(--insecure)
  [[ "$prev" == "--results" ]] && admission=(--cluster-secret "$a/.nnunet-cluster")
  [[ "$prev" == "--cluster-secret" ]] && admission=(--cluster-secret "$a")
  prev="$a"
done
seed="akka.tcp://nnunet@127.0.0.1:$port"

pids=()
stop() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait || true; }
trap stop INT TERM

$NNUNET coordinator "$dataset" --host 127.0.0.1 --port "$port" "$@" >"$log_dir/coordinator.log" 2>&1 &
coordinator=$!; pids+=("$coordinator")
echo "coordinator pid $coordinator at $seed (log $log_dir/coordinator.log)"
for i in 1 2; do
  # shellcheck disable=SC2086
  $NNUNET worker --seed "$seed" --host 127.0.0.1 ${WORKER_ARGS:---cpu 1} $simulate "${admission[@]}" >"$log_dir/worker$i.log" 2>&1 &
  pids+=("$!"); echo "worker$i pid $! (log $log_dir/worker$i.log)"
done
echo "status: $NNUNET sweep-status --seed $seed"
rc=0
wait "$coordinator" || rc=$?
for p in "${pids[@]:1}"; do wait "$p" || true; done
echo "coordinator exited with $rc"; tail -n 30 "$log_dir/coordinator.log"
exit "$rc"
