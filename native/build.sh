#!/usr/bin/env bash
# Builds the libtorch addon native/build/lvdm_torch.node with g++ directly (no node-gyp, no
# downloads), against Debian's libtorch-dev and the Node-API headers of node-addon-api and the
# local node. Rebuilds only when the sources or flags change (their hash is kept beside the
# binary). On failure: the reason goes to native/build/REASON and the script exits non-zero.
set -u
cd "$(dirname "$0")"
OUT=build
mkdir -p "$OUT"
fail() {
  echo "$1" > "$OUT/REASON"
  echo "[native] build failed: $1" >&2
  exit 1
}
CXX=${CXX:-g++}
NODE_INC=""
for d in /usr/include/node /usr/local/include/node "$(dirname "$(dirname "$(command -v node)")")/include/node"; do
  if [ -f "$d/node_api.h" ]; then NODE_INC=$d; break; fi
done
ADDON_INC=$(cd .. && node -p "require('node-addon-api').include_dir" 2>/dev/null) || ADDON_INC=""
LIBDIR=/usr/lib/x86_64-linux-gnu
command -v "$CXX" > /dev/null || fail "no C++ compiler ($CXX): apt-get install g++"
[ -f /usr/include/ATen/ATen.h ] || fail "libtorch headers missing (/usr/include/ATen/ATen.h): apt-get install libtorch-dev"
[ -n "$NODE_INC" ] || fail "Node-API headers (node_api.h) not found under /usr/include/node"
[ -n "$ADDON_INC" ] && [ -f "../$ADDON_INC/napi.h" ] || fail "node-addon-api not installed (npm ci)"
FLAGS="-O3 -fopenmp -fno-math-errno -fno-trapping-math -std=c++17 -fPIC -shared -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED -I../$ADDON_INC -I$NODE_INC -I/usr/include"
# BLAS: libtorch reaches it through libblas.so.3. OpenBLAS's OpenMP build shares libtorch's OpenMP
# thread pool; the default pthread build keeps its own threads spinning (sched_yield) beside
# libtorch's, which on 2 cores cost a quarter of a training step. Linking the OpenMP build first,
# with its directory on the addon's run path, makes it the libblas.so.3 that libtorch binds to.
OMP_BLAS=$LIBDIR/openblas-openmp
BLAS=""
[ -f "$OMP_BLAS/libblas.so.3" ] && BLAS="-L$OMP_BLAS -l:libblas.so.3 -l:liblapack.so.3 -Wl,-rpath,$OMP_BLAS"
LIBS="-L$LIBDIR -Wl,--no-as-needed $BLAS -ltorch_cpu -lc10 -Wl,-rpath,$LIBDIR -ldl"
HASH=$( (cat src/*.cc src/*.h build.sh; echo "$CXX $FLAGS $LIBS"; "$CXX" --version | head -1; ls -l /usr/include/ATen/ATen.h) | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/lvdm_torch.node" ] && [ "$(cat "$OUT/HASH" 2>/dev/null)" = "$HASH" ]; then
  echo "[native] up to date ($OUT/lvdm_torch.node)"
  exit 0
fi
rm -f "$OUT/REASON" "$OUT/HASH"
echo "[native] compiling lvdm_torch.node (about a minute)..."
# shellcheck disable=SC2086
if ! "$CXX" $FLAGS src/lvdm_torch.cc -o "$OUT/lvdm_torch.node.tmp" $LIBS 2> "$OUT/compile.log"; then
  fail "compilation failed: $(grep -m1 -E 'error|cannot find' "$OUT/compile.log" || tail -1 "$OUT/compile.log") (full log: native/build/compile.log)"
fi
mv "$OUT/lvdm_torch.node.tmp" "$OUT/lvdm_torch.node"
# Loading it proves the libraries resolve.
if ! node -e "require('./$OUT/lvdm_torch.node')" 2> "$OUT/load.log"; then
  rm -f "$OUT/lvdm_torch.node"
  fail "the built addon does not load: $(head -1 "$OUT/load.log")"
fi
echo "$HASH" > "$OUT/HASH"
echo "[native] built $OUT/lvdm_torch.node"
