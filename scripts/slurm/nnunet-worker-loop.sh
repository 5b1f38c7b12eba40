#!/usr/bin/env bash
# One `nnunet worker` process for this node of a SLURM allocation, with every GPU SLURM gave the task; started by
# nnunet-workers.sbatch and nnunet-sweep.sbatch through srun (one task per node). From the environment (srun passes
# the batch script's): SEED (the coordinator's address, required), CONFIG (the --config file every node uses),
# CLUSTER_SECRET (the cluster credential's folder when not the default one in nnUNet_results), RELEASE_IDLE_AFTER
# (seconds without a job before the node frees its GPUs), WORKER_ARGS (more worker flags), NNUNET (the command,
# default nnunet) and NNUNET_HOST (this node's address; default --host auto: the local address of the route to SEED,
# never 127.0.1.1 from `hostname -i`).
#
# The worker rejoins by itself when its node is removed from the cluster (its running job keeps going). This loop
# restarts the process only when it died (killed by a signal, out of memory, a crash): 0 (sweep finished or idle GPUs
# released), 2 (bad usage), 3 (this node cannot run nnunet: missing library or driver) and 130 (interrupted) end it,
# and so do 5 restarts within 10 minutes, so that a broken node does not spin.
set -uo pipefail
nnunet=${NNUNET:-nnunet}
node=${SLURMD_NODENAME:-$(uname -n)}
: "${SEED:?set SEED to the coordinator address, e.g. akka.tcp://nnunet@10.0.0.5:4053}"
args=(--seed "$SEED" --host "${NNUNET_HOST:-auto}" --port 0)
gpus=${CUDA_VISIBLE_DEVICES:-}
# CUDA_VISIBLE_DEVICES renumbers the visible GPUs from 0; without it the worker takes every CUDA device, else a CPU
[[ -n $gpus ]] && args+=(--gpus "$(seq -s, 0 $(( $(tr ',' '\n' <<<"$gpus" | wc -l) - 1 )))")
[[ -n ${CONFIG:-} ]] && args+=(--config "$CONFIG")
[[ -n ${CLUSTER_SECRET:-} ]] && args+=(--cluster-secret "$CLUSTER_SECRET")
[[ -n ${RELEASE_IDLE_AFTER:-} ]] && args+=(--release-idle-after "$RELEASE_IDLE_AFTER")
read -ra extra <<<"${WORKER_ARGS:-}"
args+=("${extra[@]}")
restarts=()
while true; do
  rc=0
  # shellcheck disable=SC2086 # NNUNET may be a command with arguments (apptainer exec ... nnunet)
  $nnunet worker "${args[@]}" || rc=$?
  case $rc in 0|2|3|130) exit "$rc" ;; esac
  now=$(date +%s); recent=()
  for t in "${restarts[@]}"; do (( now - t < 600 )) && recent+=("$t"); done
  restarts=("${recent[@]}" "$now")
  if (( ${#restarts[@]} > 5 )); then
    echo "nnunet worker on $node exited $rc for the 6th time within 10 minutes; giving up on this node" >&2
    exit "$rc"
  fi
  echo "nnunet worker on $node exited $rc; starting it again in 10 s" >&2
  sleep "${NNUNET_RESTART_DELAY:-10}"
done
