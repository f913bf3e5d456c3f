#!/usr/bin/env bash
# CTest driver: submits the real jobs/fashion_p4_vs_cnn.sbatch to a private one-node SLURM cluster
# (slurm_cluster.sh) with 2 MPI ranks launched by srun (PMIx), a small problem chosen through the
# script's documented environment (EQNTK_RUN_ARGS, NETWORKS), and checks the checkpoint/requeue cycle.
#
#   slurm_job_test.sh CASE SOURCE_DIR BUILD_DIR WORK_DIR
#   CASE: reference      uninterrupted run under mpiexec (2 ranks): the kernels the others must reproduce
#         signal_requeue the time-limit warning sent deterministically (scancel --signal=USR1 --batch):
#                        checkpoint flushed, exit 3, scontrol requeue, resume; restart count in the output
#         time_limit     a genuine --time=1 with --signal=B:USR1@50: the same cycle driven by SLURM itself
#         scancel_resubmit  scancel mid-build, sbatch again: resumes with every finished tile
# Exit 77 (CTest SKIP_RETURN_CODE) with one line when SLURM cannot start here.
set -euo pipefail
case_name="$1" src="$2" build="$3" work_root="$4"
here="$(cd "$(dirname "$0")" && pwd)"
ref="$work_root/reference/p4"
# The small problem: about 28 000 pairs (some 40 s on 2 cores), large enough that a signal lands mid-build.
export EQNTK_RUN_ARGS="--n-train 192 --n-test 48 --downsample 2 --block-size 16 --progress-interval 1 --save-kernels"
export NETWORKS=p4 EQNTK_BUILD="$build"
kernels=(theta_train.npy theta_test.npy nngp_train.npy nngp_test.npy)

fail() { echo "FAIL: $*"; [ -n "${job_out:-}" ] && [ -f "$job_out" ] && { echo "--- job output:"; cat "$job_out"; }; exit 1; }

[ -x "$build/eqntk" ] || { echo "SKIP: $build/eqntk is not built"; exit 77; }

if [ "$case_name" = reference ]; then
  rm -rf "$work_root/reference"
  mkdir -p "$work_root/reference"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  read -r -a extra <<< "$EQNTK_RUN_ARGS"
  cd "$src"
  mpiexec -n 2 --oversubscribe "$build/eqntk" run --config jobs/configs/fashion_full.ini --quiet \
    --arch "lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense" \
    --out "$ref" "${extra[@]}"
  for k in "${kernels[@]}"; do [ -s "$ref/$k" ] || fail "reference run wrote no $k"; done
  echo "reference kernels in $ref"
  exit 0
fi
for k in "${kernels[@]}"; do [ -s "$ref/$k" ] || fail "no reference kernels in $ref (the slurm_reference test must run first)"; done

tmp="$work_root/$case_name"
rm -rf "$tmp"
mkdir -p "$tmp"
cluster="$tmp/cluster"
trap '"$here/slurm_cluster.sh" stop "$cluster"' EXIT
rc=0
out="$("$here/slurm_cluster.sh" start "$cluster")" || rc=$?
[ "$rc" -eq 77 ] && { echo "$out"; exit 77; }
[ "$rc" -eq 0 ] || fail "slurm_cluster.sh start exited with $rc: $out"
export SLURM_CONF="$cluster/slurm.conf"
export EQNTK_WORK="$tmp/work"
job_out="$tmp/job.out"
cd "$src"

submit() {  # extra sbatch options
  sbatch --parsable --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --open-mode=append \
    --output="$job_out" "$@" jobs/fashion_p4_vs_cnn.sbatch
}
field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_for() {  # seconds, description, command...
  local limit="$1" what="$2"; shift 2
  local t0=$SECONDS
  until "$@"; do
    [ $((SECONDS - t0)) -lt "$limit" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}
build_started() { grep -q '^\[build\] tiles' "$job_out" 2>/dev/null; }
state_is() { [ "$(field "$1" JobState)" = "$2" ]; }
requeued() { [ "$(field "$1" Restarts)" -ge 1 ] 2>/dev/null && state_is "$1" PENDING; }
finished_or_requeued() { finished "$1" || requeued "$1"; }
not_pending() { ! state_is "$1" PENDING; }
finished() { case "$(field "$1" JobState)" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 0;; esac; return 1; }
# Complete records in the checkpoint logs (format in include/eqntk/io/checkpoint.hpp), counted here
# without eqntk (format v2): a 56-byte header (magic EQTILE02, int32 ×2, int64 r0 c0 rows cols, uint64
# checksum over the header and payload) + payload.
count_records() {
  /usr/bin/env python3 - "$1" <<'PY'
import glob, struct, sys
n = 0
for path in glob.glob(sys.argv[1] + "/tiles-*.log"):
    data = open(path, "rb").read()
    off = 0
    while off + 56 <= len(data) and data[off:off + 8] == b"EQTILE02":
        rows, cols = struct.unpack_from("<qq", data, off + 32)
        end = off + 56 + 16 * rows * cols
        if end > len(data):
            break
        n += 1
        off = end
print(n)
PY
}
metric() { /usr/bin/env python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build"][sys.argv[2]])' "$1" "$2"; }
same_kernels() {
  for k in "${kernels[@]}"; do
    cmp -s "$ref/$k" "$EQNTK_WORK/p4/$k" || fail "$k differs from the uninterrupted run (not bitwise identical)"
  done
  echo "kernels bitwise identical to the uninterrupted run"
}
release() {  # job id: start a requeued job now instead of after SLURM's delay
  # slurmd refuses a launch whose credential is not newer than the revoked one of the killed run
  # (second granularity: "Job credential revoked"), so wait a little before releasing.
  sleep 3
  scontrol update JobId="$1" StartTime=now
}
finish_after_requeue() {  # job id: release the requeued job and wait for it to finish
  local id="$1"
  wait_for 120 "job $id to be requeued" requeued "$id"
  release "$id"
  wait_for 300 "job $id to finish" finished "$id"
  state_is "$id" COMPLETED || fail "job $id ended $(field "$id" JobState)"
}
check_resumed() {
  local tiles restored
  tiles="$(metric "$EQNTK_WORK/p4/metrics.json" tiles)"
  restored="$(metric "$EQNTK_WORK/p4/metrics.json" tiles_restored)"
  echo "resumed with $restored of $tiles tiles from the checkpoint"
  [ "$restored" -gt 0 ] && [ "$restored" -lt "$tiles" ] || fail "expected a partial resume, got $restored of $tiles tiles restored"
}

case "$case_name" in
  signal_requeue)
    id="$(submit --time=30)"
    wait_for 120 "the build to start" build_started
    scancel --signal=USR1 --batch "$id"
    finish_after_requeue "$id"
    grep -q 'interrupted in p4: requeueing' "$job_out" || fail "the job did not report its interruption"
    grep -q 'restart 1$' "$job_out" || fail "the job output does not show restart 1"
    check_resumed
    same_kernels
    ;;
  time_limit)
    id="$(submit --time=1 --signal=B:USR1@50)"
    # Each run gets the warning 10-40 s in (SLURM checks limits every 30 s) and resumes after a requeue;
    # on a busy machine that takes several rounds, each finishing more tiles.
    for _ in $(seq 12); do
      wait_for 180 "job $id to finish or be requeued" finished_or_requeued "$id"
      finished "$id" && break
      release "$id"
      wait_for 120 "job $id to restart" not_pending "$id"
    done
    state_is "$id" COMPLETED || fail "job $id ended $(field "$id" JobState)"
    restarts="$(field "$id" Restarts)"
    [ "$restarts" -ge 1 ] || fail "the job was never requeued (Restarts=$restarts)"
    grep -q "restart $restarts\$" "$job_out" || fail "the job output does not show restart $restarts"
    grep -q 'interrupted in p4: requeueing' "$job_out" || fail "the job did not report its interruption"
    echo "Restarts=$restarts"
    same_kernels
    ;;
  scancel_resubmit)
    id="$(submit --time=30)"
    wait_for 120 "the build to start" build_started
    sleep 2
    scancel "$id"
    wait_for 60 "job $id to end" finished "$id"
    saved="$(count_records "$EQNTK_WORK/ckpt-p4")"
    shown="$(grep -o '^\[build\] tiles [0-9]*' "$job_out" | tail -1 | grep -o '[0-9]*$')"
    echo "cancelled with $saved tiles in the checkpoint (last progress line: $shown finished)"
    [ "$saved" -ge "$shown" ] || fail "the checkpoint holds $saved tiles but $shown had finished"
    id2="$(submit --time=30)"
    wait_for 300 "job $id2 to finish" finished "$id2"
    state_is "$id2" COMPLETED || fail "job $id2 ended $(field "$id2" JobState)"
    restored="$(metric "$EQNTK_WORK/p4/metrics.json" tiles_restored)"
    [ "$restored" -eq "$saved" ] || fail "the resubmitted job restored $restored tiles, the checkpoint holds $saved"
    check_resumed
    same_kernels
    ;;
  *) echo "unknown case '$case_name'" >&2; exit 2 ;;
esac
echo "PASS: $case_name"
