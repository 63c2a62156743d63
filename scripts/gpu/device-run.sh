#!/usr/bin/env bash
# The GPU measurement of issue 16, for the device machine (one NVIDIA H200, 16 cores, no Node.js,
# no network). Unpacks .gpu-pack/ (scripts/gpu/pack-runtime.sh), brings up Vulkan as the device
# README says (its loader packages are in the pack), converts the tiny fixture and synthesises the
# full-size models there, then runs bench/gpu.ts: goldens on WebGPU (fp32, fp16), node placement,
# raw session.run by batch size on WebGPU and on the 16-core CPU, and the service end to end.
# Everything goes under $OUT: log.txt, env.txt, results.json, summary.md. About 6 minutes: phases
# that would start after 270 s of measuring are skipped, and timeout_s 480 leaves device time (15 min
# a task, a start included) for a short second try.
#
# On the device tool (from the repository root, after pack-runtime.sh):
#   run  carry: [".gpu-pack"]  timeout_s: 480  command: bash scripts/gpu/device-run.sh
# Dry run on a CPU machine, in a copy of the tracked tree (it replaces node_modules/ and build/):
#   scripts/gpu/dry-run.sh     (= this script with --provider cpu --quick)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
provider=webgpu
quick=0
seconds=3
budget=270
out=${OUT:-$root/.gpu-out}
while [ $# -gt 0 ]; do
  case "$1" in
    --provider) provider=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --seconds) seconds=$2; shift 2 ;;
    --budget-s) budget=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--provider webgpu|cpu|cuda] [--quick] [--seconds N] [--budget-s N] [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
t0=$(date +%s)
step() { echo "== [$(($(date +%s) - t0)) s] $*"; }

step "unpack .gpu-pack"
[ -f .gpu-pack/runtime.tar.xz ] || { echo "no .gpu-pack/runtime.tar.xz: run scripts/gpu/pack-runtime.sh and carry .gpu-pack"; exit 1; }
if [ -e node_modules ] && [ ! -f node_modules/.albef-gpu-pack ]; then
  echo "node_modules/ here is not from the pack: run this in a copy of the tree (scripts/gpu/dry-run.sh), it replaces node_modules/ and build/"
  exit 1
fi
rt=$(mktemp -d /tmp/albef-rt.XXXXXX)
if command -v xz >/dev/null; then
  xz -dc .gpu-pack/runtime.tar.xz | tar -xf - -C "$rt"
else
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' .gpu-pack/runtime.tar.xz | tar -xf - -C "$rt"
fi
rm -rf node_modules build
mv "$rt/node_modules" "$rt/build" .
export PATH="$rt/bin:$PATH"
echo "node $(node --version) at $(command -v node); $(head -1 .gpu-pack/MANIFEST 2>/dev/null)"

step "environment"
{
  uname -a
  nproc
  free -g
  nvidia-smi -L || true
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  ldconfig -p | grep -E 'libvulkan|libGLX_nvidia|libEGL_nvidia|libnvidia-gpucomp' || true
  ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1 || true
} > "$out/env.txt" 2>&1

if [ "$provider" = webgpu ]; then
  step "vulkan"
  # Into / as the device README says; GL_ROOT (dry-run.sh) unpacks them elsewhere and adds them to the library path.
  gl_root=${GL_ROOT:-/}
  if ! ldconfig -p | grep -q 'libvulkan\.so\.1 '; then
    for f in .gpu-pack/gl/*.deb; do dpkg -x "$f" "$gl_root"; done
    if [ "$gl_root" = / ]; then ldconfig; else export LD_LIBRARY_PATH="$gl_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  fi
  # The driver's own folder, read-only there: its Vulkan ICD and the library the ICD names.
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; fi
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
  if [ -d /usr/local/nvidia/lib64 ]; then export LD_LIBRARY_PATH="/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  { echo "after the loaders:"; ldconfig -p | grep libvulkan || true; cat "$icd" 2>/dev/null || true; env | grep -E '^(VK_|__EGL|LD_LIBRARY)' || true; } >> "$out/env.txt" 2>&1
fi

step "models"
m=$(mktemp -d /tmp/albef-models.XXXXXX)
fixture=test/fixtures/albef-tiny-a
if [ "$quick" = 1 ]; then
  full=(--arch "$fixture/arch.json" --image-res 96)
  precisions=fp16,fp32
  cpu_precisions=fp32
  extra=(--image-batches 1,2 --cpu-image-batches 1,2 --text-batches 1,8 --concurrency 1,4)
else
  full=(--preset albef_4m)
  precisions=fp16,fp32
  cpu_precisions=fp32,int8
  extra=()
fi
for p in fp32 fp16; do
  node build/src/cli/main.js convert --checkpoint "$fixture/checkpoint.pth" --arch "$fixture/arch.json" --precision "$p" --name "tiny-$p" --out "$m/tiny-$p"
done
pids=()
for p in $(echo "$precisions,$cpu_precisions" | tr , '\n' | sort -u); do
  node build/src/cli/main.js synth "${full[@]}" --precision "$p" --out "$m/full-$p" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
du -sh "$m"/*

if [ "$provider" = webgpu ]; then
  # test/http/providers.test.ts hides GPUs with a missing driver file: check that this holds with a GPU there.
  step "hidden GPU: --provider webgpu must fail"
  set +e
  VK_DRIVER_FILES=/nonexistent/albef-test-icd.json VK_ICD_FILENAMES=/nonexistent/albef-test-icd.json \
    timeout 120 node build/src/cli/main.js serve --models "$m/tiny-fp32" --port 0 --provider webgpu > "$m/hidden.log" 2>&1
  code=$?
  set -e
  echo "exit $code; $(grep -o 'No supported adapters' "$m/hidden.log" | head -1)" | tee -a "$out/env.txt"
fi

step "bench/gpu.ts"
node build/bench/gpu.js --provider "$provider" --models "$m" --out "$out" --seconds "$seconds" --budget-s "$budget" \
  --precisions "$precisions" --cpu-precisions "$cpu_precisions" ${extra[@]+"${extra[@]}"}
step "done"
