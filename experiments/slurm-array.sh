#!/usr/bin/env bash
# Run one echoseg study as a Slurm job array: each array task runs one shard of the plan into
# the shared run store, and a dependent job merges them and writes the report.
#
#   experiments/slurm-array.sh experiments/full.toml 4        # submit 4 shards + the merge
#   experiments/slurm-array.sh experiments/full.toml 4 --set train.epochs=20
#
# Shards split the plan by repeat (a repeat's runs teach each other), so use at most
# `study.repeats` shards. The reports directory must be on a file system every node sees;
# set ECHOSEG_REPORTS to place it (default: reports/ beside this checkout). Any batch scheduler
# works the same way: run `echoseg run MANIFEST --shard I/N --resume` for I = 1..N, in any order
# and on any machines, then `echoseg merge NAME` once.
#
# Inside an array task (SLURM_ARRAY_TASK_ID set) the script runs the shard itself; called from a
# login node it submits the array and the merge job.
set -euo pipefail

manifest=${1:?usage: slurm-array.sh MANIFEST SHARDS [--set KEY=VALUE ...]}
shards=${2:?usage: slurm-array.sh MANIFEST SHARDS [--set KEY=VALUE ...]}
shift 2
reports=${ECHOSEG_REPORTS:-reports}
echoseg=${ECHOSEG:-target/release/echoseg}

if [[ -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
    # --resume: a requeued or preempted task continues its shard instead of starting over.
    exec "$echoseg" run "$manifest" --shard "${SLURM_ARRAY_TASK_ID}/${shards}" --resume --quiet \
        --reports "$reports" --threads "${SLURM_CPUS_PER_TASK:-0}" "$@"
fi

if [[ ! -x "$echoseg" ]]; then
    cargo build --release -p echoseg
fi
# The study name decides the run store; `echoseg plan` checks the manifest before anything queues.
"$echoseg" plan "$manifest" --no-timing "$@" > /dev/null
name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$manifest" | head -n 1)
for arg in "$@"; do
    case "$arg" in name=*) name=${arg#name=} ;; esac
done
name=${name:-$(basename "$manifest" .toml)}
mkdir -p "$reports"

array=$(sbatch --parsable --array="1-${shards}" --job-name="echoseg-${name}" \
    --cpus-per-task="${ECHOSEG_CPUS:-4}" --mem="${ECHOSEG_MEM:-4G}" --time="${ECHOSEG_TIME:-12:00:00}" \
    --output="${reports}/slurm-%x-%a.out" "$0" "$manifest" "$shards" "$@")
merge=$(sbatch --parsable --dependency="afterok:${array}" --job-name="echoseg-${name}-merge" \
    --cpus-per-task=2 --mem=4G --time=00:30:00 --output="${reports}/slurm-%x.out" \
    --wrap="\"$echoseg\" merge \"$name\" --reports \"$reports\"")
echo "submitted array job $array ($shards shards) and merge job $merge; the report appears in $reports/$name/index.html"
