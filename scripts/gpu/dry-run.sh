#!/usr/bin/env bash
# Dry run of device-run.sh on this (CPU) machine, as the device machine would see it: a copy of what
# the device tool sends (tracked and untracked-not-ignored files) plus .gpu-pack/, nothing else, and
# --provider cpu --quick (tiny models, short runs). Leaves the copy's $OUT in .gpu-out/dry-run/.
#   scripts/gpu/pack-runtime.sh && scripts/gpu/dry-run.sh [--provider webgpu]   (webgpu: its failure path here)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
[ -f .gpu-pack/runtime.tar.xz ] || { echo "no .gpu-pack: run scripts/gpu/pack-runtime.sh first" >&2; exit 1; }
copy=$(mktemp -d /tmp/albef-dry.XXXXXX)
trap 'rm -rf "$copy"' EXIT
{ git ls-files -z; git ls-files -z --others --exclude-standard; } | tar -cf - --null -T - | tar -xf - -C "$copy"
cp -r .gpu-pack "$copy/"
out="$root/.gpu-out/dry-run"
rm -rf "$out" && mkdir -p "$out"
# device-run.sh puts the pack's node first on PATH (the device has none of its own).
# With --provider webgpu the Vulkan loader packages go into the copy, not into this machine's /.
(cd "$copy" && env PATH=/usr/sbin:/usr/bin:/sbin:/bin OUT="$out" GL_ROOT="$copy/.gl-root" bash scripts/gpu/device-run.sh --provider cpu --quick --seconds 0.5 "$@")
# What the device tool brings back from $OUT: at most 8 files, 2 folders down, plain names.
n=$(find "$out" -type f | wc -l)
bad=$(find "$out" -mindepth 1 | sed "s|^$out/||" | grep -Ev '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$' || true)
echo "dry-run: $n files under \$OUT${bad:+; names the device tool would not bring back: $bad}"
[ "$n" -le 8 ] && [ -z "$bad" ]
