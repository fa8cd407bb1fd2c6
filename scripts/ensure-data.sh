#!/usr/bin/env bash
# Make sure the offline real data the default sweep and the tests use is present:
# Debian's dataset-fashion-mnist (Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist).
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -n "${PRUNEBENCH_DATA:-}" ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's dataset-fashion-mnist ..." >&2
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
  echo "Fashion-MNIST not found in $dir. Install Debian's dataset-fashion-mnist, or run" >&2
  echo "  prunebench download fashion-mnist DIR  and set PRUNEBENCH_DATA to DIR's parent" >&2
  exit 1
fi
