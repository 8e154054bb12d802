#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian + Node 20 machine, run by both README commands:
#   1. Debian packages: ffmpeg (video I/O), python3 + numpy + torch (test fixtures and the
#      checkpoint-export check), libtorch-dev + g++ +
#      OpenBLAS (the native backend), redis-server (the job queue), chromium + fonts (plot PNGs and
#      browser checks), Jupyter (notebooks with the tslab kernel).
#   2. The exact npm dependencies (npm ci when node_modules is missing or older than the lockfile).
#   3. The native addon (native/build.sh; rebuilt only when its sources change).
#   4. The project-local tslab kernelspec (.jupyter/kernels/tslab), nothing outside the project.
# Set LVDM_SETUP_NO_APT=1 to skip step 1 (then whatever is missing is reported by `lvdm doctor`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a file it installs (checked instead of dpkg so a hand-built tool also counts).
declare -A APT_PKGS=(
  [ffmpeg]=/usr/bin/ffmpeg
  [python3]=/usr/bin/python3
  [python3-numpy]=/usr/lib/python3/dist-packages/numpy/__init__.py
  [python3-torch]=/usr/lib/python3/dist-packages/torch/__init__.py
  [libtorch-dev]=/usr/include/torch/csrc/api/include/torch/torch.h
  [g++]=/usr/bin/g++
  [make]=/usr/bin/make
  [libopenblas0-pthread]=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
  [libopenblas0-openmp]=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
  [redis-server]=/usr/bin/redis-server
  [chromium]=/usr/bin/chromium
  [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
  [jupyter-nbconvert]=/usr/bin/jupyter-nbconvert
  [jupyter-client]=/usr/lib/python3/dist-packages/jupyter_client/__init__.py
  [jupyter-notebook]=/usr/bin/jupyter-notebook
)
need_apt=()
for pkg in "${!APT_PKGS[@]}"; do
  [ -e "${APT_PKGS[$pkg]}" ] || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ] && [ -z "${LVDM_SETUP_NO_APT:-}" ]; then
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The native (libtorch) backend: builds when its sources changed; a failed build leaves the
# project on wasm and `lvdm doctor` says why (native/build.sh writes the reason).
if [ -f native/build.sh ]; then
  bash native/build.sh || echo "[setup] native backend not built (see native/build/REASON); wasm will be used"
fi

# The tslab kernelspec, project-local (JUPYTER_PATH=<project>/.jupyter).
if [ -f scripts/kernelspec.mjs ]; then
  node scripts/kernelspec.mjs
fi
