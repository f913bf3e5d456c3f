#!/usr/bin/env bash
# The bundled example: `mpirun -np 2 eqntk run` on 200 Fashion-MNIST training images and 100 test images
# rotated by random multiples of 90 degrees, once with a p4-GCNN NTK and once with the CNN of the same
# layers, then the two accuracies side by side. Usage: tools/run_example.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
out="${2:-$here/out/example}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
config="$here/jobs/configs/example_fashion.ini"
p4="lift:k=3:pad=same,relu,gconv:k=3:pad=same,relu,gpool,dense"
cnn="conv:k=3:pad=same,relu,conv:k=3:pad=same,relu,gap,dense"
start=$(date +%s)
mpirun -np 2 "$build/eqntk" run --config "$config" --arch "$p4" --out "$out/p4" --overwrite
mpirun -np 2 "$build/eqntk" run --config "$config" --arch "$cnn" --out "$out/cnn" --overwrite
acc() { grep -o "\"kernel\": \"$2\", \"t\": \"$3\", \"accuracy\": [0-9.e-]*" "$out/$1/metrics.json" | sed 's/.*: //'; }
printf '\nrotated Fashion-MNIST, 200 train / 100 rotated test images at 14x14, t = inf\n'
printf '  p4-GCNN NTK accuracy  %.3f   (NNGP %.3f)\n' "$(acc p4 ntk inf)" "$(acc p4 nngp inf)"
printf '  CNN NTK accuracy      %.3f   (NNGP %.3f)\n' "$(acc cnn ntk inf)" "$(acc cnn nngp inf)"
printf 'outputs in %s (%d s)\n' "$out" "$(( $(date +%s) - start ))"
