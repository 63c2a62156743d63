// The command line's rough edges of issue 22, through the real `albef-embed`: inputs never dropped
// silently (several paths after --images, stray arguments refused by name), typos answered with the
// closest flag in every command, paths said in words, healthcheck parsed like the others, usage
// errors exit 2, "already exists" said before a checkpoint is read, the fetch hint keeps --out, and
// --version.

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, runCli, spawnCli } from '../../kit/cli.js';
import { golden, IMAGES_DIR, TINY_ARCH, TINY_CHECKPOINT } from '../../kit/golden.js';
import { cleanupTinyModel, startServer, tinyModel } from '../../kit/server.js';
import { fetchModel } from '../../src/convert/fetch-model.js';
import { PACKAGE_VERSION } from '../../src/core/paths.js';
import { describeConfig } from '../../src/service/config.js';

const dir = await mkdtemp(join(tmpdir(), 'albef-edges-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await cleanupTinyModel();
});
const { dir: model } = await tinyModel();
const ids = async (f: string): Promise<string[]> =>
  (await readFile(f, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id)
    .sort();

t.test('item 3: embed uses every input it is given, and refuses words it would drop', async (t) => {
  const photos = join(dir, 'photos');
  await mkdir(join(photos, 'a'), { recursive: true });
  await mkdir(join(photos, 'b'), { recursive: true });
  const files = golden.images.slice(0, 3).map((g) => g.file);
  for (const f of files) await copyFile(join(IMAGES_DIR, f), join(photos, f));
  await copyFile(join(IMAGES_DIR, files[0]!), join(photos, 'a', files[0]!));
  await copyFile(join(IMAGES_DIR, files[1]!), join(photos, 'b', files[1]!));

  // `--images photos/*.jpg` unquoted: the shell hands over one path per file.
  const expanded = join(dir, 'expanded.jsonl');
  const r1 = await runCli([
    'embed',
    '--model',
    model,
    '--out',
    expanded,
    '--images',
    ...files.map((f) => join(photos, f)),
  ]);
  t.equal(r1.code, 0, r1.stderr);
  t.same(await ids(expanded), [...files].sort(), 'every file, ids as the quoted glob gives them');

  const repeated = join(dir, 'repeated.jsonl');
  const r2 = await runCli([
    'embed',
    '--model',
    model,
    '--images',
    join(photos, 'a'),
    '--images',
    join(photos, 'b'),
    '--out',
    repeated,
  ]);
  t.equal(r2.code, 0, r2.stderr);
  t.same(await ids(repeated), [`a/${files[0]}`, `b/${files[1]}`], 'both folders, not only the last');

  const one = join(dir, 'one.txt');
  const two = join(dir, 'two.txt');
  await writeFile(one, 'a dog\na cat\n');
  await writeFile(two, 'a red car\n');
  const texts = join(dir, 'texts.jsonl');
  const r3 = await runCli(['embed', '--model', model, '--texts', one, two, '--out', texts]);
  t.equal(r3.code, 0, r3.stderr);
  t.same(await ids(texts), ['one.txt:1', 'one.txt:2', 'two.txt:1'], 'the lines of both files');

  const stray = await runCli(['embed', '--model', model, '--text', 'a', 'extra']);
  t.equal(stray.code, 2, 'a usage error');
  t.match(stray.stderr, /unexpected argument "extra" \(--text takes one value/);
  t.equal(stray.stdout, '', 'nothing embedded');
  const strayMatch = await runCli(['rerank', '--model', model, '--query', 'a dog', 'runs', '--image', 'x.jpg']);
  t.equal(strayMatch.code, 2);
  t.match(strayMatch.stderr, /unexpected argument "runs"/, 'the same parse in every command');
});

t.test('item 6: an unknown flag gets a clean message and the closest known flag, in every command', async (t) => {
  const typos: Record<string, [string, string]> = {
    serve: ['--prot', '--port'],
    fetch: ['--forse', '--force'],
    convert: ['--chekpoint', '--checkpoint'],
    synth: ['--sed', '--seed'],
    embed: ['--txt', '--text'],
    merge: ['--otu', '--out'],
    rerank: ['--qeury', '--query'],
    classify: ['--lable', '--label'],
    healthcheck: ['--verbos', '--verbose'],
    eval: ['--k-tset', '--k-test'],
    index: ['--colection', '--collection'],
    search: ['--rernk', '--rerank'],
    collections: ['--stor', '--store'],
    export: ['--fromat', '--format'],
  };
  const help = (await runCli(['--help'])).stdout;
  const commands = help
    .slice(help.indexOf('Commands:'))
    .split('\n')
    .slice(1)
    .filter((l) => /^ {2}\w/.test(l))
    .map((l) => l.trim().split(/\s/)[0]!);
  t.same(Object.keys(typos).sort(), commands.sort(), 'every command that --help lists');
  for (const [command, [typo, meant]] of Object.entries(typos)) {
    const r = await runCli([command, typo, 'x']);
    t.equal(r.code, 2, `${command} ${typo}: exit 2`);
    t.match(r.stderr, `unknown option ${typo} (did you mean ${meant}?)`, `${command} ${typo} → ${meant}`);
    t.notMatch(r.stderr, /-- "--/, 'no garbled hint');
  }
});

t.test('item 6: serve names the option, its values and the value given, once; --help lists the values', async (t) => {
  const r = await runCli(['serve', '--provider', 'gpu']);
  t.equal(r.code, 2);
  t.match(r.stderr, '--provider must be one of default, cpu, cuda, webgpu, auto (got "gpu")');
  t.equal(r.stderr.split('must be').length - 1, 1, 'said once');
  t.notMatch(r.stderr, /equal to constant/);
  const help = await runCli(['serve', '--help']);
  t.equal(help.code, 0);
  for (const flag of ['--on-load-error', '--log-level', '--provider', '--fetch']) {
    const values = describeConfig()
      .find((row) => row.flag === flag)!
      .values!.filter(Boolean);
    t.match(help.stdout, `(one of ${values.join(', ')})`, `${flag} lists ${values.join(', ')}`);
  }
});

t.test('item 7: file arguments in words, named, exit 2; --out creates its folder', async (t) => {
  const folderImage = await runCli(['embed', '--model', model, '--image', IMAGES_DIR]);
  t.equal(folderImage.code, 2);
  t.match(folderImage.stderr, `--image ${IMAGES_DIR}: a folder, not a file`);
  t.notMatch(folderImage.stderr, /EISDIR/);
  const folderTexts = await runCli(['embed', '--model', model, '--texts', dir, '--out', join(dir, 'x.jsonl')]);
  t.equal(folderTexts.code, 2);
  t.match(folderTexts.stderr, `--texts ${dir}: a folder, not a file`);
  const missing = await runCli(['embed', '--model', model, '--image', join(dir, 'nosuch.jpg')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, `--image ${join(dir, 'nosuch.jpg')}: no such file`);
  t.notMatch(missing.stderr, /ENOENT/);
  const noDir = await runCli([
    'embed',
    '--model',
    model,
    '--images',
    join(dir, 'nosuchdir'),
    '--out',
    join(dir, 'y.jsonl'),
  ]);
  t.equal(noDir.code, 2);
  t.match(noDir.stderr, `--images ${join(dir, 'nosuchdir')}: no such file or folder`);
  t.notMatch(noDir.stderr, /nothing to embed/);
  const noCheckpoint = await runCli(['convert', '--checkpoint', join(dir, 'no.pth'), '--out', join(dir, 'm')]);
  t.equal(noCheckpoint.code, 2);
  t.match(noCheckpoint.stderr, `--checkpoint ${join(dir, 'no.pth')}: no such file`);
  const notModel = await runCli(['embed', '--model', dir, '--text', 'a']);
  t.equal(notModel.code, 2);
  t.match(notModel.stderr, `--model ${dir}: not a model directory (no model.json)`);

  const captions = join(dir, 'captions.txt');
  await writeFile(captions, 'a dog\n');
  const nested = join(dir, 'new', 'deeper', 'x.jsonl');
  const created = await runCli(['embed', '--model', model, '--texts', captions, '--out', nested]);
  t.equal(created.code, 0, created.stderr);
  t.same(await ids(nested), ['1'], 'the folder was created and the file written');
});

t.test('item 8: healthcheck parses like the other commands and says why it fails', async (t) => {
  const help = await runCli(['healthcheck', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: albef-embed healthcheck/);
  const server = await startServer();
  t.teardown(() => server.close());
  const { port } = server.app.server.address() as AddressInfo;
  const ready = await runCli(['healthcheck', `--port=${port}`]);
  t.equal(ready.code, 0, `--port=N: ${ready.stderr}`);
  const verbose = await runCli(['healthcheck', '--port', String(port), '--verbose']);
  t.equal(verbose.code, 0, verbose.stderr);
  t.match(verbose.stdout, /ready: .*answered 200/);
  const free = await freePort();
  const down = await runCli(['healthcheck', '--port', String(free)]);
  t.equal(down.code, 1, 'not ready: 1');
  t.match(down.stderr, `not ready: http://127.0.0.1:${free}/readyz: 127.0.0.1 port ${free} refused the connection`);
  const fromEnv = await runCli(['healthcheck'], { ALBEF_PORT: String(port) });
  t.equal(fromEnv.code, 0, 'the port from ALBEF_PORT');
  const bad = await runCli(['healthcheck', '--port', 'http']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--port must be a whole number of at least 1 (got "http")');
});

t.test('item 11: usage errors exit 2; --encoding-format base64 with --out is refused', async (t) => {
  const both = await runCli([
    'convert',
    '--checkpoint',
    TINY_CHECKPOINT,
    '--preset',
    'albef_4m',
    '--arch',
    TINY_ARCH,
    '--out',
    join(dir, 'both'),
  ]);
  t.equal(both.code, 2, both.stderr);
  t.match(both.stderr, 'give either --preset or --arch, not both');
  const synth = await runCli(['synth', '--preset', 'albef_4m', '--arch', TINY_ARCH, '--out', join(dir, 'both')]);
  t.equal(synth.code, 2);
  const captions = join(dir, 'b64.txt');
  await writeFile(captions, 'a dog\n');
  const out = join(dir, 'b64.jsonl');
  const b64 = await runCli([
    'embed',
    '--model',
    model,
    '--texts',
    captions,
    '--out',
    out,
    '--encoding-format',
    'base64',
  ]);
  t.equal(b64.code, 2);
  t.match(b64.stderr, '--encoding-format base64 is for the JSON on stdout: --out files hold float arrays');
  t.notOk(existsSync(out), 'not silently written as floats');
});

t.test('item 11: "already exists" comes before the checkpoint is read', async (t) => {
  // A FIFO with no writer: reading it would block forever, so an answer proves nothing read it.
  const fifo = join(dir, 'checkpoint.fifo');
  execFileSync('mkfifo', [fifo]);
  const out = join(dir, 'exists');
  await mkdir(out);
  const child = spawnCli(['convert', '--checkpoint', fifo, '--arch', TINY_ARCH, '--out', out]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  t.equal(code, 1, 'refused, not stuck reading the checkpoint');
  t.match(stderr, /error \[already_exists\]: .*exists already exists \(use --force to replace it\)/);
});

t.test('item 12: the fetch hint carries the --out of the failed run', async (t) => {
  // What `serve --models DIR --fetch albef_4m` runs: the model goes to DIR/albef_4m.
  const out = join(dir, 'served models', 'albef_4m');
  const port = await freePort();
  const error = await fetchModel(
    { preset: 'albef_4m', out, url: `http://127.0.0.1:${port}/ALBEF_4M.pth`, cacheDir: join(dir, 'cache12') },
    { info: () => {}, warn: () => {} },
  ).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.ok(error, 'the download failed');
  const quoted = `'${out}'`;
  t.match(error!.message, `albef-embed fetch albef_4m --url https://<mirror>/ALBEF_4M.pth --out ${quoted}`);
  t.match(error!.message, `albef-embed convert --checkpoint ALBEF_4M.pth --preset albef_4m --out ${quoted}`);
});

t.test('item 13: --version and -v print the package version', async (t) => {
  for (const flag of ['--version', '-v']) {
    const r = await runCli([flag]);
    t.equal(r.code, 0);
    t.equal(r.stdout, `${PACKAGE_VERSION}\n`, flag);
  }
  const help = await runCli(['--help']);
  t.match(help.stdout, '--version');
});
