#!/usr/bin/env bash
# Packs what the GPU device machine needs and does not have (it has no Node.js and reaches no
# registry) into .gpu-pack/ (git-ignored), for the device tool's `carry`:
#   runtime.tar.xz  node (this machine's binary), the production dependencies for linux-x64 only
#                   (other platforms' onnxruntime-node and sharp binaries, type declarations, source
#                   maps and docs of dependencies left out; no dev dependencies) and a fresh build/ (src, bench, kit)
#   gl/*.deb        the Vulkan loader and GL dispatch libraries, per the device README (amd64)
#   MANIFEST        sizes and sha256 sums
# The tracked tree travels too: the script fails when both together pass the 64 MiB limit.
#
#   scripts/gpu/pack-runtime.sh [--no-gl] [--no-build]     (PACK_XZ_LEVEL=1 packs fast, 4 MB larger, to iterate)
# then, on the device tool:  run  carry: [".gpu-pack"]  command: bash scripts/gpu/device-run.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
pack=.gpu-pack
gl=1
build=1
for a in "$@"; do
  case "$a" in
    --no-gl) gl=0 ;;
    --no-build) build=0 ;;
    *) echo "usage: $0 [--no-gl] [--no-build]" >&2; exit 2 ;;
  esac
done
limit=$((64 * 1024 * 1024))
[ "$(uname -m)" = x86_64 ] || { echo "pack-runtime: the device is x86-64; pack on an x86-64 machine" >&2; exit 1; }
command -v xz >/dev/null || { echo "pack-runtime: needs xz" >&2; exit 1; }

if [ "$build" = 1 ]; then npm run --silent build:bench; fi
[ -f build/src/cli/main.js ] && [ -f build/bench/gpu.js ] || { echo "pack-runtime: build/ is not built (npm run build:bench)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rt/bin"
cp "$(command -v node)" "$stage/rt/bin/node"
# Symbols and debug info out (addons link against the dynamic symbols, which stay): 2 MB less packed.
if command -v strip >/dev/null; then strip --strip-all "$stage/rt/bin/node"; fi

# Production packages only: the top-level directories npm lists for --omit=dev (nested ones come with them).
# (npm ls exits non-zero on any extraneous package; its list is still complete.)
npm ls --omit=dev --all --parseable > "$stage/ls" 2>/dev/null || true
sed -n "s|^$root/||p" "$stage/ls" | grep '^node_modules/' | sort -u |
  awk 'BEGIN { last = "" } { if (last != "" && index($0, last "/") == 1) next; print; last = $0 }' > "$stage/list"
tar -cf - -T "$stage/list" | tar -xf - -C "$stage/rt"
nm="$stage/rt/node_modules"
ort="$nm/onnxruntime-node/bin/napi-v6"
[ -f "$ort/linux/x64/libonnxruntime.so.1" ] || { echo "pack-runtime: no linux-x64 onnxruntime-node binary in node_modules" >&2; exit 1; }
find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} +
find "$nm/@img" -mindepth 1 -maxdepth 1 -name 'sharp-*' ! -name '*-linux-x64' -exec rm -rf {} +
# protobufjs's command-line tools (pbjs, pbts, with their own dependencies) and a package's tests.
rm -rf "$nm/protobufjs/cli" "$nm/bintrees/test"
find "$nm" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -iname '*.md' -o -iname 'CHANGELOG*' \) -delete
cp package.json "$stage/rt/"
cp -r build "$stage/rt/"
find "$stage/rt/build" -name '*.map' -delete
# device-run.sh refuses to overwrite a node_modules/ that does not carry this mark.
date -u +%FT%TZ > "$nm/.albef-gpu-pack"

rm -rf "$pack" && mkdir -p "$pack"
echo "pack-runtime: compressing (xz -9: a few minutes on 2 cores)" >&2
tar -C "$stage/rt" -cf - . | nice -n 19 xz "-${PACK_XZ_LEVEL:-9}" -T0 > "$pack/runtime.tar.xz"

if [ "$gl" = 1 ]; then
  # The device README's recipe: amd64 packages whatever this machine's architecture, own list directory.
  mkdir -p "$pack/gl" /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" -qq update
  (cd "$pack/gl" && apt-get "${o[@]}" -qq download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

{
  echo "packed $(date -u +%FT%TZ) on $(uname -n), node $(node --version), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
  echo "unpacked: $(du -sb "$stage/rt" | cut -f1) bytes (node $(stat -c %s "$stage/rt/bin/node"), node_modules $(du -sb "$nm" | cut -f1), build $(du -sb "$stage/rt/build" | cut -f1))"
  (cd "$pack" && find . -type f ! -name MANIFEST -printf '%P\n' | sort | xargs sha256sum | while read -r sum f; do echo "$(stat -c %s "$f") $sum $f"; done)
} > "$pack/MANIFEST"

packed=$(du -sb "$pack" | cut -f1)
tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s }')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
total=$((packed + tracked + untracked))
cat "$pack/MANIFEST" >&2
awk -v p="$packed" -v t="$tracked" -v u="$untracked" -v n="$total" 'BEGIN { printf "pack-runtime: .gpu-pack %d bytes + tracked tree %d + untracked %d = %d bytes (%.1f MiB of the 64 MiB carried)\n", p, t, u, n, n / 1048576 }' >&2
[ "$total" -le "$limit" ] || { echo "pack-runtime: over the 64 MiB the device tool carries" >&2; exit 1; }
