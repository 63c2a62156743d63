// The decode section of `npm run bench` (alone: `npm run bench -- --decode-only`): ALBEF's image
// preprocessing (decode as PIL does, PIL-exact bicubic resize to 384 px) for a 640×480, 1920×1080 and
// 4000×3000 JPEG and a 1024×768 PNG, made here from the fixture photo. Measured standalone
// (preprocessImage on this thread, libvips on one thread as in a decode worker) and in the service (a
// tiny model served at 384 px, one request at a time: x-decode-time, x-total-time and the client's
// round trip), beside Pillow's time for the same files when a python3 with PIL is found (skipped
// otherwise). Pillow and the project alternate in short slices: the ratios are what to compare.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import sharp from 'sharp';
import { convertCheckpoint } from '../src/convert/convert.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import { preprocessImage } from '../src/imaging/decode.js';
import { TINY_ARCH, TINY_CHECKPOINT } from '../kit/golden.js';
import { multipartImage, startService } from './service.js';
import { median, round } from './stats.js';

const SIZE = 384;
const PILLOW_SCRIPT = join(PACKAGE_ROOT, 'bench', 'pillow_preprocess.py');

interface BenchImage {
  name: string;
  width: number;
  height: number;
  bytes: Buffer;
  path: string;
}

/** Per-call times (ms): wall clock and the process's CPU time. */
interface Times {
  wall: number[];
  cpu: number[];
}

export interface DecodeRow {
  image: string;
  width: number;
  height: number;
  kB: number;
  /** medians over every call, ms */
  standalone: { wallMs: number; cpuMs: number };
  pillow?: { wallMs: number; cpuMs: number };
  /** Pillow's time ÷ the project's, per round (CPU time), and over all rounds */
  speedup?: { cpu: number; wall: number; perRound: number[] };
  service: { decodeMs: number; inferenceMs: number; totalMs: number; clientMs: number; requests: number };
}

export interface DecodeResult {
  pillowVersion?: string;
  python?: string;
  rounds: number;
  rows: DecodeRow[];
}

/** The test images: the fixture photo as it is, and scaled (sharp, fixed settings: the same bytes every run). */
async function makeImages(dir: string): Promise<BenchImage[]> {
  const photo = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'images', 'photo.jpg'));
  const scaled = (w: number, h: number) => sharp(photo).resize(w, h, { fit: 'fill', kernel: 'cubic' });
  const specs: [string, number, number, () => Promise<Buffer>][] = [
    ['jpeg-640x480', 640, 480, async () => photo],
    ['jpeg-1920x1080', 1920, 1080, () => scaled(1920, 1080).jpeg({ quality: 90 }).toBuffer()],
    ['jpeg-4000x3000', 4000, 3000, () => scaled(4000, 3000).jpeg({ quality: 90 }).toBuffer()],
    ['png-1024x768', 1024, 768, () => scaled(1024, 768).png({ adaptiveFiltering: true }).toBuffer()],
  ];
  const images: BenchImage[] = [];
  for (const [name, width, height, make] of specs) {
    const bytes = await make();
    const path = join(dir, name + (name.startsWith('png') ? '.png' : '.jpg'));
    await writeFile(path, bytes);
    images.push({ name, width, height, bytes, path });
  }
  return images;
}

/** A python3 that has PIL: Debian's (python3-pil) or the one on PATH; undefined when none has. */
function findPillowPython(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', 'import PIL'], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) return python;
  }
  return undefined;
}

/** bench/pillow_preprocess.py kept running: each request times `reps` calls on one file. */
class Pillow {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly rl: Interface,
    readonly version: string,
  ) {}

  static async start(python: string): Promise<Pillow> {
    const child = spawn(python, [PILLOW_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    const rl = createInterface({ input: child.stdout });
    const lines = rl[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error('bench/pillow_preprocess.py exited before answering');
    return new Pillow(child, lines, rl, (JSON.parse(first.value) as { pillow: string }).pillow);
  }

  async time(path: string, reps: number): Promise<Times> {
    this.child.stdin.write(`${reps} ${SIZE} ${path}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error('bench/pillow_preprocess.py exited');
    const pairs = JSON.parse(line.value) as [number, number][];
    return { wall: pairs.map((p) => p[0]), cpu: pairs.map((p) => p[1]) };
  }

  close(): void {
    this.rl.close();
    this.child.stdin.end();
  }
}

async function timeProject(bytes: Buffer, reps: number): Promise<Times> {
  const t: Times = { wall: [], cpu: [] };
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const r = await preprocessImage(bytes, { size: SIZE, maxPixels: 1e9 });
    t.wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    t.cpu.push((c.user + c.system) / 1000);
    if (!r.ok) throw new Error(`the bench image did not decode: ${r.message}`);
  }
  return t;
}

const push = (into: Times, from: Times): void => {
  into.wall.push(...from.wall);
  into.cpu.push(...from.cpu);
};

/** One request at a time to a running service: its timing headers and the client's round trip. */
async function timeService(origin: string, image: BenchImage, n: number) {
  const mp = multipartImage(image.bytes, image.name);
  const out = { decode: [] as number[], inference: [] as number[], total: [] as number[], client: [] as number[] };
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(`${origin}/embed/image`, { method: 'POST', headers: mp.headers, body: mp.body });
    await res.arrayBuffer();
    out.client.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`/embed/image answered ${res.status} for ${image.name}`);
    out.decode.push(Number(res.headers.get('x-decode-time')));
    out.inference.push(Number(res.headers.get('x-inference-time')));
    out.total.push(Number(res.headers.get('x-total-time')));
  }
  return out;
}

export async function benchDecode(options: {
  rounds: number;
  /** rough seconds per image per round, for each side */
  sliceSeconds: number;
  serveArgs: string[];
  log: (m: string) => void;
}): Promise<DecodeResult> {
  const { rounds, log } = options;
  const dir = await mkdtemp(join(tmpdir(), 'albef-bench-decode-'));
  try {
    const images = await makeImages(dir);
    const python = findPillowPython();
    const pillow = python ? await Pillow.start(python) : undefined;
    log(
      pillow
        ? `decode: Pillow ${pillow.version} (${python}) alongside`
        : 'decode: no python3 with PIL found (apt-get install python3-pil): Pillow skipped',
    );

    // Standalone, alternating with Pillow image by image; libvips on one thread and without its
    // operation cache, as in a decode worker.
    const concurrency = sharp.concurrency();
    const cache = sharp.cache();
    sharp.concurrency(1);
    sharp.cache(false);
    const ours = new Map(images.map((im) => [im.name, { wall: [], cpu: [] }]));
    const theirs = new Map(images.map((im) => [im.name, { wall: [], cpu: [] }]));
    const perRound = new Map(images.map((im) => [im.name, [] as number[]]));
    const reps = new Map<string, number>();
    for (const im of images) {
      const first = await timeProject(im.bytes, 2); // also warms up
      reps.set(im.name, Math.max(3, Math.min(40, Math.round((options.sliceSeconds * 1000) / Math.max(...first.wall)))));
      if (pillow) await pillow.time(im.path, 1);
    }
    for (let r = 0; r < rounds; r++) {
      for (const im of images) {
        const n = reps.get(im.name)!;
        const a = await timeProject(im.bytes, n);
        push(ours.get(im.name)!, a);
        if (pillow) {
          const b = await pillow.time(im.path, n);
          push(theirs.get(im.name)!, b);
          perRound.get(im.name)!.push(round(median(b.cpu) / median(a.cpu), 2));
        }
      }
      log(`decode: standalone round ${r + 1}/${rounds}`);
    }
    sharp.concurrency(concurrency);
    sharp.cache({ memory: cache.memory.max, files: cache.files.max, items: cache.items.max });
    pillow?.close();

    // The service: the tiny model at 384 px, so that decoding is nearly all there is to a request.
    const modelDir = join(dir, 'tiny-384');
    await convertCheckpoint({
      checkpoint: TINY_CHECKPOINT,
      archFile: TINY_ARCH,
      imageRes: SIZE,
      out: modelDir,
      name: 'tiny-384',
    });
    const svc = await startService(modelDir, options.serveArgs);
    const served = new Map(
      images.map((im) => [
        im.name,
        { decode: [] as number[], inference: [] as number[], total: [] as number[], client: [] as number[] },
      ]),
    );
    try {
      for (const im of images) await timeService(svc.origin, im, 5); // warm-up, every decode thread
      for (let r = 0; r < rounds; r++) {
        for (const im of images) {
          const s = await timeService(svc.origin, im, Math.max(5, Math.ceil(40 / rounds)));
          const into = served.get(im.name)!;
          into.decode.push(...s.decode);
          into.inference.push(...s.inference);
          into.total.push(...s.total);
          into.client.push(...s.client);
        }
        log(`decode: service round ${r + 1}/${rounds}`);
      }
    } finally {
      await svc.stop();
    }

    const rows: DecodeRow[] = images.map((im) => {
      const a = ours.get(im.name)!;
      const b = theirs.get(im.name)!;
      const s = served.get(im.name)!;
      const standalone = { wallMs: round(median(a.wall)), cpuMs: round(median(a.cpu)) };
      const pil = pillow ? { wallMs: round(median(b.wall)), cpuMs: round(median(b.cpu)) } : undefined;
      return {
        image: im.name,
        width: im.width,
        height: im.height,
        kB: Math.round(im.bytes.length / 1024),
        standalone,
        ...(pil && {
          pillow: pil,
          speedup: {
            cpu: round(pil.cpuMs / standalone.cpuMs),
            wall: round(pil.wallMs / standalone.wallMs),
            perRound: perRound.get(im.name)!,
          },
        }),
        service: {
          decodeMs: round(median(s.decode)),
          inferenceMs: round(median(s.inference)),
          totalMs: round(median(s.total)),
          clientMs: round(median(s.client)),
          requests: s.decode.length,
        },
      };
    });
    return { pillowVersion: pillow?.version, python, rounds, rows };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function decodeTable(r: DecodeResult): string {
  const pil = r.pillowVersion !== undefined;
  const lines = [
    `| image | ${pil ? `Pillow ${r.pillowVersion} ms (CPU · wall) | ` : ''}project standalone ms (CPU · wall) | ${pil ? 'Pillow ÷ project (CPU; per round) | ' : ''}service: x-decode-time · x-inference-time · x-total-time · client ms |`,
    `|---|${pil ? '---:|' : ''}---:|${pil ? '---:|' : ''}---:|`,
  ];
  for (const row of r.rows) {
    const cells = [`${row.image} (${row.kB} kB)`];
    if (pil) cells.push(row.pillow ? `${row.pillow.cpuMs} · ${row.pillow.wallMs}` : '');
    cells.push(`${row.standalone.cpuMs} · ${row.standalone.wallMs}`);
    if (pil) cells.push(row.speedup ? `${row.speedup.cpu}× (${row.speedup.perRound.join('/')})` : '');
    cells.push(
      `${row.service.decodeMs} · ${row.service.inferenceMs} · ${row.service.totalMs} · ${row.service.clientMs}`,
    );
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
