#!/usr/bin/env bash
# Prepare what scripts/gpu-check.sh needs on a lent GPU machine that has no network and no Node.js:
# .gpu/ (git-ignored) gets
#   node.xz           this machine's Node binary (x86-64 Linux), xz-compressed
#   bundle.tar.xz     the built dist/ folders and the runtime node_modules (pruned to what a run loads:
#                     tfjs's CJS bundles, dawn.node for linux-x64, sharp for linux-x64, the small deps)
#   debs/*.deb        the Vulkan/EGL loaders (libvulkan1, libglvnd, ...), from apt, for amd64
# Run it here after `npm ci && npm run build`; then on the lent machine (device `run`, carry ['.gpu']):
#   bash scripts/gpu-check.sh
# The device carries at most 64 MiB with the tracked files: this prints the size it comes to.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -m)" = x86_64 ] || { echo "gpu-pack: build on x86-64 (the lent machine is x86-64)" >&2; exit 1; }
for d in packages/core/dist apps/trainer/dist; do [ -d "$d" ] || { echo "gpu-pack: $d missing: run npm run build first" >&2; exit 1; }; done
mkdir -p .gpu && rm -rf .gpu/debs .gpu/bundle.tar.xz && mkdir -p .gpu/debs
node_bin=$(command -v node)
# compressing Node takes minutes: keep a packed one that is newer than the binary
if [ ! -s .gpu/node.xz ] || [ "$node_bin" -nt .gpu/node.xz ]; then xz -T0 -6 -c "$node_bin" > .gpu/node.xz.tmp && mv .gpu/node.xz.tmp .gpu/node.xz; fi

# Runtime packages of the workspaces (no dev deps), as node_modules paths.
# (paths relative to the root: a workspace's own node_modules, e.g. apps/trainer/node_modules/commander, stays there)
mapfile -t pkgs < <(npm ls --omit=dev --omit=peer --all --parseable 2>/dev/null | grep '/node_modules/' | sed "s|^$PWD/||" | sort -u)
list=$(mktemp)
for p in "${pkgs[@]}"; do
  [ -e "$p" ] || continue # listed by npm but not installed (an optional dependency left out)
  case "$p" in
    */node_modules/@adaptorkit/* | node_modules/@adaptorkit/*) echo "$p" ;; # workspace links (the packages travel as tracked files + dist)
    *node_modules/@tensorflow/tfjs-backend-wasm) ;; # not used on the GPU machine
    *node_modules/@tensorflow/*) echo "$p/package.json"; find "$p/dist" -maxdepth 1 -name '*.node.js' ;; # the CJS bundles Node loads
    *node_modules/webgpu) echo "$p/package.json"; echo "$p/index.js"; echo "$p/dist/linux-x64" ;;
    *) find "$p" -type f ! -name '*.map' ! -name '*.md' ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' ;;
  esac
done > "$list"
# every built dist/ of the workspaces
ls -d packages/*/dist apps/*/dist >> "$list"
sort -u -o "$list" "$list"
tar -cJf .gpu/bundle.tar.xz -T "$list"
rm -f "$list"

# Vulkan and EGL loaders for the lent machine (its README: bring them when ldconfig has no libvulkan).
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
if apt-get $o update -qq >/dev/null 2>&1; then
  (cd .gpu/debs && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1) || echo "gpu-pack: apt-get download failed: no loaders packed (the machine may have them)" >&2
else
  echo "gpu-pack: apt-get update failed: no loaders packed (the machine may have them)" >&2
fi
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb .gpu | cut -f1)
echo "gpu-pack: .gpu is $((carry / 1048576)) MiB, tracked files $((tracked / 1048576)) MiB: $(((carry + tracked) / 1048576)) of the 64 MiB a device run carries"
