#!/usr/bin/env bash
# Installs the Debian 12 packages eqntk needs to build, test and run its bundled example.
#   tools/setup_debian.sh                 build, tests, eqntk run on Fashion-MNIST, benchmarks
#   tools/setup_debian.sh --experiments   also what the data converters of the experiments need:
#                                         python3-ase (G2/97 molecules, tools/convert_g2.py), python3-sklearn
#                                         (8x8 optdigits, tools/convert_optdigits.py)
#   tools/setup_debian.sh --list          print the base package list and exit (.ci/run checks it
#                                         against its own explicit list)
set -euo pipefail
packages=(build-essential cmake pkg-config git ca-certificates
          openmpi-bin libopenmpi-dev libscalapack-openmpi-dev libopenblas-dev
          libeigen3-dev libboost-program-options-dev libgtest-dev libgmock-dev
          zlib1g-dev libsleef-dev libfftw3-dev nlohmann-json3-dev slurm-wlm munge
          ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
          dataset-fashion-mnist python3 python3-numpy python3-matplotlib time)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${packages[@]}"; exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${packages[@]}"
if [ "${1:-}" = "--experiments" ]; then
  $SUDO apt-get install -y --no-install-recommends python3-ase python3-sklearn
fi
