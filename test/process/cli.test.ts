// The command line as users run it: convert, synth, embed, and the service configuration (flags,
// environment twins, validation).

import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { describeConfig, loadConfig } from '../../src/service/config.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { runCli } from '../../kit/cli.js';
import { cosine, golden, IMAGES_DIR, TINY_ARCH, TINY_CHECKPOINT, TOL } from '../../kit/golden.js';
import { ConfigError } from '../../src/core/errors.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-cli-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('convert, then embed texts and images from the command line', async (t) => {
  const out = join(dir, 'tiny');
  const conv = await runCli([
    'convert',
    '--checkpoint',
    TINY_CHECKPOINT,
    '--arch',
    TINY_ARCH,
    '--out',
    out,
    '--name',
    'tiny-cli',
  ]);
  t.equal(conv.code, 0, conv.stderr);
  const manifest = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
  t.match(manifest, {
    name: 'tiny-cli',
    precision: 'fp32',
    image_res: 96,
    source: { file: 'checkpoint.pth', sha256: /^[0-9a-f]{64}$/ },
  });
  t.match(manifest.files['image.onnx'], { bytes: Number, sha256: /^[0-9a-f]{64}$/ });

  const again = await runCli(['convert', '--checkpoint', TINY_CHECKPOINT, '--arch', TINY_ARCH, '--out', out]);
  t.equal(again.code, 1, 'refuses to overwrite without --force');
  t.match(again.stderr, /already exists/);

  const text = await runCli([
    'embed',
    '--model',
    out,
    '--text',
    golden.texts[0]!.text,
    '--text',
    golden.texts[1]!.text,
  ]);
  t.equal(text.code, 0, text.stderr);
  const tj = JSON.parse(text.stdout);
  t.match(tj, { model: 'tiny-cli', modality: 'text', dim: 32 });
  t.ok(cosine(tj.embeddings[0], golden.texts[0]!.pre_caption.embedding) >= TOL.textCos);
  t.ok(cosine(tj.embeddings[1], golden.texts[1]!.pre_caption.embedding) >= TOL.textCos);

  const raw = await runCli(['embed', '--model', out, '--no-caption-cleanup', '--text', golden.texts[0]!.text]);
  t.ok(
    cosine(JSON.parse(raw.stdout).embeddings[0], golden.texts[0]!.raw.embedding) >= TOL.textCos,
    '--no-caption-cleanup',
  );

  const img = await runCli(['embed', '--model', out, '--image', join(IMAGES_DIR, golden.images[0]!.file)]);
  t.equal(img.code, 0, img.stderr);
  t.ok(cosine(JSON.parse(img.stdout).embeddings[0], golden.images[0]!.embedding) >= TOL.imageCos);
});

t.test('convert errors exit non-zero with the reason', async (t) => {
  const bad = await runCli([
    'convert',
    '--checkpoint',
    join(IMAGES_DIR, 'photo.jpg'),
    '--arch',
    TINY_ARCH,
    '--out',
    join(dir, 'x'),
  ]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /not_a_checkpoint/);
  t.notOk(existsSync(join(dir, 'x')));
  const usage = await runCli(['convert', '--out', join(dir, 'y')]);
  t.equal(usage.code, 2, 'usage error');
  t.match(usage.stderr, /--checkpoint and --out are required/);
});

t.test('synth writes a model of a given architecture', async (t) => {
  const out = join(dir, 'synth');
  const res = await runCli(['synth', '--arch', TINY_ARCH, '--out', out, '--precision', 'int8']);
  t.equal(res.code, 0, res.stderr);
  t.match(JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')), {
    precision: 'int8',
    source: { synthetic: true, seed: 1 },
  });
});

t.test('configuration: flags over environment over defaults, validated', async (t) => {
  t.match(loadConfig([], {}), { port: 8080, host: '127.0.0.1', models: ['./models'], allowPrivateUrls: false });
  t.match(loadConfig([], { ALBEF_PORT: '9000', ALBEF_MODELS: 'a,b', ALBEF_ALLOW_PRIVATE_URLS: 'true' }), {
    port: 9000,
    models: ['a', 'b'],
    allowPrivateUrls: true,
  });
  t.match(loadConfig(['--port', '9100', '--models', 'x', '--models', 'y,z'], { ALBEF_PORT: '9000' }), {
    port: 9100,
    models: ['x', 'y', 'z'],
  });
  t.match(loadConfig(['--no-warmup'], { ALBEF_WARMUP: 'true' }), { warmup: false });
  t.throws(() => loadConfig(['--port', 'eighty'], {}), ConfigError);
  t.throws(() => loadConfig([], { ALBEF_MAX_BATCH_IMAGES: '-1' }), /--max-batch-images \(ALBEF_MAX_BATCH_IMAGES\)/);
  t.match(
    loadConfig([], { ALBEF_PROVIDER: 'webgpu' }),
    { provider: 'webgpu', maxBatchImages: 0 },
    'webgpu provider; batch sizes by provider unless set',
  );
  t.throws(() => loadConfig(['--provider', 'tpu'], {}), ConfigError);
  t.throws(() => loadConfig(['--no-such-flag'], {}), ConfigError);
  const rows = describeConfig();
  t.ok(
    rows.every((r) => r.flag.startsWith('--') && r.env.startsWith('ALBEF_') && r.description),
    'every option has a flag, an env twin and a description',
  );
  const page = readFileSync(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
  for (const r of rows)
    t.ok(page.includes(`| \`${r.flag}\` | \`${r.env}\` |`), `docs/configuration.md documents ${r.flag}`);
});
