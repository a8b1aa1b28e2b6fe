#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, fetches MNIST, builds (Release) and trains reference 1's model
# (or whatever the flags say: they go to the program; ./scripts/mnist.sh --help lists them).
#
#   ./scripts/mnist.sh                       reference 1, 20 epochs, pictures in runs/bn-mlp
#   ./scripts/mnist.sh --preset deep-mlp --epochs 5
#   ./scripts/mnist.sh --data-dir ~/fashion-mnist   any dataset in MNIST's IDX format
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# A --data-dir you name (either form: --data-dir DIR, --data-dir=DIR) is read as it is, and
# --help needs no data: neither fetches MNIST.
user_data_dir=0 help=0
for arg in "$@"; do
  case $arg in
    --data-dir | --data-dir=*) user_data_dir=1 ;;
    -h | --help) help=1 ;;
  esac
done

ensure_packages
data_args=()
if [ $user_data_dir = 0 ] && [ $help = 0 ]; then
  "$repo_root/scripts/fetch-mnist.sh" >&2
  data_args=(--data-dir "$repo_root/data/mnist")
fi

dir=$repo_root/build
configure_and_build "$dir" mnist -DCMAKE_CXX_COMPILER="$(cxx_of "$(default_compiler)")" \
  -DBACKPROP_MNIST_DIR="$repo_root/data/mnist"
exec "$dir/examples/mnist/mnist" "${data_args[@]}" "$@"
