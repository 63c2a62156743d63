// int8 models must give the same vectors on every CPU ONNX Runtime runs on. The AVX2 and AVX-512
// (non-VNNI) integer GEMM adds the products of two adjacent uint8 activations and int8 weights in a
// saturating int16, so a model is exact everywhere only if every adjacent pair of weights along the
// reduction axis satisfies 255 × (|w_k| + |w_k+1|) ≤ 32767. This is checked on the stored weights,
// which a VNNI machine (where the golden cosine cannot show saturation) checks as well as any other.
// Plus: reading the CPU flags that pick the kernel, and the warning for models of older converters.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { convertCheckpoint } from '../../src/convert/convert.js';
import { PRESETS } from '../../src/convert/arch.js';
import { cpuFeatures } from '../../src/core/cpu-features.js';
import { modelWarnings } from '../../src/inference/model-warnings.js';
import type { ModelManifest } from '../../src/core/model-manifest.js';
import { TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';
import { storedTensors } from '../../kit/onnx-weights.js';
import { spawnCli } from '../../kit/cli.js';
import { cleanupTinyModel, startServer } from '../../kit/server.js';

const INT8 = 3; // onnx TensorProto.DataType.INT8
const dir = await mkdtemp(join(tmpdir(), 'albef-int8-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const out = join(dir, 'int8');
const manifest = await convertCheckpoint({
  checkpoint: TINY_CHECKPOINT,
  out,
  archFile: TINY_ARCH,
  precision: 'int8',
  name: 'tiny-int8',
});

t.test('no pair of stored int8 weights can saturate a 16-bit pair sum', async (t) => {
  t.same(
    manifest.quantization,
    { scheme: 'symmetric-per-output-channel', weight_max: 64 },
    'model.json records the scheme',
  );
  let checked = 0;
  for (const file of Object.keys(manifest.files).filter((f) => f.endsWith('.onnx'))) {
    const weights = storedTensors(join(out, file)).filter((w) => w.dataType === INT8 && w.dims.length === 2);
    t.ok(weights.length > 0, `${file}: has int8 weights`);
    for (const w of weights) {
      const [k, n] = w.dims as [number, number];
      const q = new Int8Array(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength);
      let worstPair = 0;
      let max = 0;
      for (let r = 0; r < k; r++) {
        for (let c = 0; c < n; c++) {
          const a = Math.abs(q[r * n + c]!);
          max = Math.max(max, a);
          // MLAS packs B so that vpmaddubsw pairs rows 2i and 2i+1 of each column (K padded with 0).
          if (r % 2 === 0) worstPair = Math.max(worstPair, a + (r + 1 < k ? Math.abs(q[(r + 1) * n + c]!) : 0));
        }
      }
      if (255 * worstPair > 32767 || max > manifest.quantization!.weight_max)
        t.fail(`${file} ${w.name}: max |q| ${max}, worst pair ${worstPair}`);
      checked++;
    }
  }
  t.ok(checked > 0, `${checked} int8 weight matrices within ±64 with pair sums ≤ 128`);
});

const CPUINFO = {
  zen3: 'processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2\n',
  icelake:
    'model name\t: Intel(R) Xeon(R) Platinum 8375C\nflags\t: sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni\n',
  skylake: 'model name\t: Intel(R) Xeon(R) Gold 6148\nflags\t: avx avx2 fma avx512f avx512bw avx512vl\n',
  alderlake: 'model name\t: 12th Gen Intel(R) Core(TM) i7-12700\nflags\t: avx avx2 fma avx_vnni\n',
  sapphire:
    'model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t: avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8 amx_bf16\n',
};

t.test('the CPU flags decide the int8 kernel and whether it saturates', async (t) => {
  const k = (info: string, arch = 'x64') => {
    const f = cpuFeatures(info, arch);
    return [f.int8Kernel, f.int8PairsSaturate];
  };
  t.same(k(CPUINFO.zen3), ['avx2-vpmaddubsw', true], 'AVX2 only');
  t.same(k(CPUINFO.skylake), ['avx512-vpmaddubsw', true], 'AVX-512 without VNNI');
  t.same(k(CPUINFO.icelake), ['vnni', false], 'AVX-512 VNNI');
  t.same(k(CPUINFO.alderlake), ['vnni', false], 'AVX-VNNI');
  t.same(k(CPUINFO.sapphire), ['amx', false], 'AMX');
  t.same(
    k('processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0c\n', 'arm64'),
    ['arm64', false],
    'arm64',
  );
  t.same(
    cpuFeatures(CPUINFO.icelake, 'x64').flags,
    ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni'],
    'records the kernel-picking flags',
  );
  t.equal(cpuFeatures(CPUINFO.zen3, 'x64').model, 'AMD EPYC 7B13');
  const here = cpuFeatures();
  t.ok(
    here.arch.length > 0 && Array.isArray(here.flags),
    `this machine: ${here.model} [${here.flags.join(' ')}] → ${here.int8Kernel}`,
  );
});

t.test('a full-range int8 model of an older converter is named, with the command that reconverts it', async (t) => {
  const legacy: ModelManifest = { ...manifest, converter_version: '1.1.0' };
  delete legacy.quantization;
  const zen3 = cpuFeatures(CPUINFO.zen3, 'x64');
  const [warning] = modelWarnings(legacy, '/srv/models/albef_4m', zen3);
  t.match(warning, /±127 \(converter 1\.1\.0\).*avx2-vpmaddubsw/);
  t.ok(
    warning!.endsWith(
      `albef-embed convert --checkpoint checkpoint.pth --arch ARCH.json --image-res ${manifest.image_res} --precision int8 --name ${manifest.name} --out /srv/models/albef_4m --force`,
    ),
    'the reconvert command keeps the name and resolution, and asks for the architecture of a non-official model',
  );
  const official = {
    ...legacy.architecture,
    embed_dim: 256,
    vision: { ...legacy.architecture.vision, ...PRESETS.albef_4m.vision },
    text: { ...legacy.architecture.text, ...PRESETS.albef_4m.text },
  };
  t.notMatch(
    modelWarnings({ ...legacy, architecture: official }, '/m', zen3)[0],
    /--arch/,
    'the official architecture needs no --arch (the default preset)',
  );
  t.same(
    modelWarnings(legacy, '/m', cpuFeatures(CPUINFO.icelake, 'x64')),
    [],
    'no warning where the kernel is exact (VNNI)',
  );
  t.same(modelWarnings(manifest, '/m', zen3), [], 'no warning for 7-bit weights');
  t.same(modelWarnings({ ...legacy, precision: 'fp32' }, '/m', zen3), [], 'no warning for float models');
  t.match(
    modelWarnings({ ...legacy, source: { synthetic: true, seed: 1 } }, '/m', zen3)[0],
    /albef-embed synth .*--precision int8 --name \S+ --seed 1 --out \/m --force/,
  );

  // Served: GET /models carries the warning for such a model on such a CPU.
  const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
  delete json.quantization;
  json.converter_version = '1.1.0';
  await writeFile(join(out, 'model.json'), JSON.stringify(json));
  for (const [cpu, expected] of [
    [zen3, 1],
    [cpuFeatures(CPUINFO.sapphire, 'x64'), 0],
  ] as const) {
    const server = await startServer({ models: [out] }, { cpu });
    try {
      const body = (await (await fetch(`${server.url}/models`)).json()) as { models: { warnings: string[] }[] };
      t.equal(body.models[0]!.warnings.length, expected, `${cpu.int8Kernel}: ${expected} warning(s) in /models`);
    } finally {
      await server.close();
    }
  }

  // The real process on this machine's CPU: the startup log carries the warning exactly when this CPU's kernel saturates.
  const child = spawnCli(['serve', '--models', out, '--port', '0', '--decode-threads', '1'], {
    ALBEF_LOG_LEVEL: 'info',
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      if (/"msg":"ready"/.test(log)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before ready: ${log}`)));
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const saturates = cpuFeatures().int8PairsSaturate;
  t.equal(
    /"level":40.*saturates on them.*albef-embed convert --checkpoint/.test(log),
    saturates,
    `startup log: ${saturates ? 'a warning with the reconvert command' : 'no warning'} on this CPU (${cpuFeatures().int8Kernel})`,
  );
});
