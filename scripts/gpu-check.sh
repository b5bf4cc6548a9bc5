#!/usr/bin/env bash
# One command on a lent GPU machine (no network, no Node.js): the benchmark model (bench/model.mjs,
# 4-layer d=256 LLaMA-style, batch 8 x 128) trained on webgpu and on PyTorch CUDA, a profile of a webgpu
# step, and the smoke demo on webgpu. Prints one JSON line per measurement on stdout (and into
# $OUT/gpu-check.jsonl when $OUT is set); progress goes to stderr. Under 10 minutes: each part has a
# time limit (webgpu bench 2 x 90 s, profile 60 s, PyTorch 2 x 60 s, smoke demo 220 s, 4 rows at a time);
# a part that runs over prints its JSON line with "exit 124 (timed out)".
#
# Here, first: npm ci && npm run build && bash scripts/gpu-pack.sh    (fills the git-ignored .gpu/)
# There (device `run`, carry ['.gpu'], timeout_s 600):                bash scripts/gpu-check.sh
# Dry run on a machine without a GPU (Mesa's CPU renderer, torch on the CPU, 1 step, no demo, long limits):
#   GPU_CHECK_DRY=1 bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=${GPU_CHECK_DRY:-0}
log() { echo "gpu-check: $*" >&2; }
emit() { echo "$1"; [ -n "${OUT:-}" ] && echo "$1" >> "$OUT/gpu-check.jsonl"; return 0; }
json_err() { node -e 'console.log(JSON.stringify({measure: process.argv[1], error: process.argv[2]}))' "$1" "$2"; }

# ---- Node and the runtime node_modules (from .gpu/, made by scripts/gpu-pack.sh) ----
if ! command -v node >/dev/null || [ "$DRY" != 1 ]; then
  if [ -s .gpu/node.xz ]; then
    mkdir -p /tmp/gpu-node/bin && xz -dc .gpu/node.xz > /tmp/gpu-node/bin/node && chmod +x /tmp/gpu-node/bin/node
    export PATH=/tmp/gpu-node/bin:$PATH
  fi
fi
command -v node >/dev/null || { echo '{"measure":"setup","error":"no node: run scripts/gpu-pack.sh here and carry .gpu"}'; exit 1; }
if [ "$DRY" != 1 ] || [ ! -d node_modules/@tensorflow/tfjs-core ]; then
  [ -s .gpu/bundle.tar.xz ] || { echo '{"measure":"setup","error":"no .gpu/bundle.tar.xz: run scripts/gpu-pack.sh"}'; exit 1; }
  tar -xJf .gpu/bundle.tar.xz
fi

# ---- Vulkan: loaders from .gpu/debs when the machine has none; NVIDIA's ICD where the device README puts it ----
if [ "$DRY" != 1 ] && ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gpu/debs/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e "$nv_icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nv_icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi

# T: the time limit of each bench part (a dry run on a CPU renderer takes minutes per step)
if [ "$DRY" = 1 ]; then WEBGPU=webgpu:cpu; TORCH_DEV=cpu; STEPS=1; WARM=1; T=900; TP=900; else WEBGPU=webgpu; TORCH_DEV=cuda; STEPS=10; WARM=2; T=90; TP=60; fi
fail() { emit "$(json_err "$1" "exit $2$([ "$2" = 124 ] && echo ' (timed out)'): $(grep -v '^Warning: max\|artificially reduced' /tmp/gpu-check-err.txt | tail -3 | tr '\n' ' ')")"; }
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
emit "$(node -e 'const os=require("os");console.log(JSON.stringify({measure:"machine",date:new Date().toISOString(),gpu:process.argv[1]||null,cpu:os.cpus()[0]?.model,cores:os.cpus().length,node:process.version,dry:process.argv[2]==="1",vkDriverFiles:process.env.VK_DRIVER_FILES??null}))' "$gpu" "$DRY")"

BENCH=experiments/backend-native
HOOKS=(--import ./register-hooks.mjs)
# ---- 1. the benchmark model on webgpu ----
for mode in adapter full; do
  log "webgpu ($WEBGPU) $mode, $STEPS steps..."
  out=$(cd $BENCH && timeout $T node "${HOOKS[@]}" train.mjs "$WEBGPU" $mode $STEPS $WARM 2> /tmp/gpu-check-err.txt); rc=$?
  line=$(grep '^{' <<<"$out" | tail -1)
  if [ -n "$line" ]; then
    emit "$(node -e 'const r=JSON.parse(process.argv[1]);const s=[...r.stepMs].sort((a,b)=>a-b);console.log(JSON.stringify({measure:"bench",backend:"webgpu",adapter:r.detail,mode:r.mode,medianStepMs:s[s.length>>1],stepMs:r.stepMs,tokensPerS:1024/(s[s.length>>1]/1000),loss:r.loss,trainable:r.trainable,peakRssMb:r.peakRssMb}))' "$line")"
  else
    fail "bench webgpu $mode" $rc
  fi
done

# ---- 2. where a webgpu step's time goes ----
log "webgpu profile (adapter)..."
out=$(cd $BENCH && timeout $TP node "${HOOKS[@]}" webgpu-profile.mjs "$WEBGPU" adapter $STEPS 2> /tmp/gpu-check-err.txt); rc=$?
line=$(grep '^{' <<<"$out" | tail -1)
if [ -n "$line" ]; then emit "$line"; else fail webgpu-profile $rc; fi

# ---- 3. the PyTorch twin on CUDA (the cpu in a dry run) ----
PY=""
for py in python3 /usr/bin/python3; do "$py" -c 'import torch' 2>/dev/null && { PY=$py; break; }; done
for mode in adapter full; do
  log "pytorch $TORCH_DEV $mode..."
  [ -n "$PY" ] || { emit "$(json_err "bench pytorch $mode" 'no python3 with torch')"; continue; }
  out=$(timeout $TP "$PY" $BENCH/torch_bench.py $mode $STEPS $WARM 8 $TORCH_DEV 2> /tmp/gpu-check-err.txt); rc=$?
  line=$(tail -1 <<<"$out")
  if [ -n "$line" ]; then
    emit "$(node -e 'const r=JSON.parse(process.argv[1]);const s=[...r.step_ms].sort((a,b)=>a-b);console.log(JSON.stringify({measure:"bench",backend:"pytorch",device:r.device,torch:r.torch,mode:r.mode,medianStepMs:s[s.length>>1],stepMs:r.step_ms,tokensPerS:1024/(s[s.length>>1]/1000),loss:r.loss,trainable:r.trainable}))' "$line")"
  else
    fail "bench pytorch $mode" $rc
  fi
done

# ---- 4. the smoke demo on webgpu (every row's backend set to webgpu) ----
if [ "$DRY" = 1 ]; then
  emit '{"measure":"demo-smoke","skipped":"dry run (the smoke demo takes hours on a CPU renderer)"}'
else
  log "smoke demo on $WEBGPU..."
  node -e '
    const fs = require("fs"), path = require("path"), YAML = require("yaml");
    const file = path.resolve("examples/demo.yaml"), dir = path.dirname(file);
    const spec = YAML.parse(fs.readFileSync(file, "utf8"));
    spec.set = [...(spec.set ?? []), `backend=${process.argv[1]}`];
    for (const g of spec.groups) { for (const r of g.rows) if (r.config) r.config = path.resolve(dir, r.config); if (g.script) g.script.run = path.resolve(dir, g.script.run); }
    fs.writeFileSync("/tmp/gpu-check-demo.yaml", YAML.stringify(spec));' "$WEBGPU"
  t0=$(date +%s)
  timeout 220 node apps/trainer/bin/adaptorkit.js demo --smoke --jobs 4 --no-png --spec /tmp/gpu-check-demo.yaml --out /tmp/gpu-check-demo > /tmp/gpu-check-demo.log 2>&1
  rc=$?
  [ -n "${OUT:-}" ] && cp /tmp/gpu-check-demo.log "$OUT/demo.log"
  if [ -s /tmp/gpu-check-demo/results.json ]; then
    emit "$(node -e 'const r=require("/tmp/gpu-check-demo/results.json");console.log(JSON.stringify({measure:"demo-smoke",backend:r.backend,seconds:r.seconds,failures:r.failures,rows:r.rows.map(x=>({group:x.group,id:x.id,metrics:x.summary.metrics,medianStepMs:x.summary.medianStepMs,trainSeconds:x.summary.trainSeconds}))}))')"
  else
    emit "$(json_err demo-smoke "exit $rc after $(( $(date +%s) - t0 )) s: $(grep -v '^\s*step ' /tmp/gpu-check-demo.log | tail -3 | tr '\n' ' ')")"
  fi
fi
log "done"
