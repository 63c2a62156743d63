// Writes PyTorch checkpoints (zip and legacy formats) the way torch.save lays them out, so that tests
// can derive variants of the fixture checkpoint (other layouts, dtypes, strides, damaged files) and the
// benchmarks can make a full-size one. A pickle protocol-2 writer for the few value kinds torch uses.

import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import yazl from 'yazl';
import type { DType } from '../src/convert/tensor-data.js';

export class Tup {
  constructor(readonly items: unknown[]) {}
}
export class OrderedDict {
  constructor(readonly entries: [unknown, unknown][]) {}
}
/** A GLOBAL reference, optionally called with args (REDUCE): how hostile pickles run code. */
export class Call {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args?: unknown[],
  ) {}
}
export class TensorSpec {
  constructor(
    readonly storageKey: string,
    readonly dtype: DType,
    readonly storageNumel: number,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const STORAGE_NAME: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

export class PickleWriter {
  private readonly parts: Buffer[] = [];
  constructor(private readonly legacy = false) {
    this.op(0x80, 2); // PROTO 2
  }
  private op(...bytes: number[]): void {
    this.parts.push(Buffer.from(bytes));
  }
  private raw(b: Buffer): void {
    this.parts.push(b);
  }
  private str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    this.op(0x58);
    this.raw(len);
    this.raw(b);
  }
  private global(module: string, name: string): void {
    this.op(0x63);
    this.raw(Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  write(v: unknown): void {
    if (v === null || v === undefined) this.op(0x4e);
    else if (v === true) this.op(0x88);
    else if (v === false) this.op(0x89);
    else if (typeof v === 'string') this.str(v);
    else if (typeof v === 'bigint') {
      // LONG1: little-endian two's complement, as many bytes as needed
      const bytes: number[] = [];
      let x = v;
      for (;;) {
        bytes.push(Number(x & 0xffn));
        x >>= 8n;
        const sign = bytes[bytes.length - 1]! & 0x80;
        if ((x === 0n && !sign) || (x === -1n && sign)) break;
      }
      this.op(0x8a, bytes.length, ...bytes);
    } else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
        const b = Buffer.alloc(4);
        b.writeInt32LE(v);
        this.op(0x4a);
        this.raw(b);
      } else if (Number.isInteger(v)) this.write(BigInt(v));
      else {
        const b = Buffer.alloc(8);
        b.writeDoubleBE(v);
        this.op(0x47);
        this.raw(b);
      }
    } else if (v instanceof Tup) {
      this.op(0x28);
      v.items.forEach((x) => this.write(x));
      this.op(0x74);
    } else if (Array.isArray(v)) {
      this.op(0x5d, 0x28);
      v.forEach((x) => this.write(x));
      this.op(0x65);
    } else if (v instanceof OrderedDict) {
      this.global('collections', 'OrderedDict');
      this.op(0x29, 0x52); // () REDUCE
      this.items(v.entries);
    } else if (v instanceof Map) {
      this.op(0x7d);
      this.items([...v.entries()]);
    } else if (v instanceof Call) {
      this.global(v.module, v.name);
      if (v.args) {
        this.write(new Tup(v.args));
        this.op(0x52);
      }
    } else if (v instanceof TensorSpec) {
      this.global('torch._utils', '_rebuild_tensor_v2');
      this.op(0x28);
      // persistent id
      this.op(0x28);
      this.write('storage');
      this.global('torch', STORAGE_NAME[v.dtype]);
      this.write(v.storageKey);
      this.write('cpu');
      this.write(v.storageNumel);
      if (this.legacy) this.write(null); // view_metadata
      this.op(0x74, 0x51); // TUPLE BINPERSID
      this.write(v.offset);
      this.write(new Tup(v.shape));
      this.write(new Tup(v.stride));
      this.write(false);
      this.write(new OrderedDict([]));
      this.op(0x74, 0x52); // TUPLE REDUCE
    } else throw new Error(`cannot pickle ${typeof v}`);
  }
  private items(entries: [unknown, unknown][]): void {
    if (entries.length === 0) return;
    this.op(0x28);
    for (const [k, val] of entries) {
      this.write(k);
      this.write(val);
    }
    this.op(0x75);
  }
  finish(): Buffer {
    this.op(0x2e);
    return Buffer.concat(this.parts);
  }
}

export function pickle(v: unknown, legacy = false): Buffer {
  const w = new PickleWriter(legacy);
  w.write(v);
  return w.finish();
}

export interface StorageBytes {
  dtype: DType;
  bytes: Uint8Array;
}

/** torch >= 1.6 layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/version`, stored (uncompressed). */
export async function writeTorchZip(
  path: string,
  root: unknown,
  storages: Map<string, StorageBytes>,
  rootDir = 'archive',
): Promise<void> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(pickle(root), `${rootDir}/data.pkl`, { compress: false });
  zip.addBuffer(Buffer.from('little'), `${rootDir}/byteorder`, { compress: false });
  for (const [key, s] of storages)
    zip.addBuffer(Buffer.from(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength), `${rootDir}/data/${key}`, {
      compress: false,
    });
  zip.addBuffer(Buffer.from('3\n'), `${rootDir}/version`, { compress: false });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const out = createWriteStream(path);
    out.on('close', resolve).on('error', reject);
    zip.outputStream.pipe(out);
  });
}

/** torch < 1.6 layout: magic, protocol, sys_info, the object, the storage keys, then raw storages. */
export async function writeTorchLegacy(
  path: string,
  root: unknown,
  storages: Map<string, StorageBytes>,
): Promise<void> {
  const parts: Buffer[] = [
    pickle(0x1950a86a20f9469cfc6cn),
    pickle(1001),
    pickle(
      new Map<unknown, unknown>([
        ['protocol_version', 1001],
        ['little_endian', true],
        [
          'type_sizes',
          new Map([
            ['short', 2],
            ['int', 4],
            ['long', 4],
          ]),
        ],
      ]),
    ),
    pickle(root, true),
    pickle([...storages.keys()]),
  ];
  for (const s of storages.values()) {
    const count = Buffer.alloc(8);
    const size = {
      float32: 4,
      float64: 8,
      float16: 2,
      bfloat16: 2,
      int64: 8,
      int32: 4,
      int16: 2,
      int8: 1,
      uint8: 1,
      bool: 1,
    }[s.dtype];
    count.writeBigInt64LE(BigInt(s.bytes.byteLength / size));
    parts.push(count, Buffer.from(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength));
  }
  await writeFile(path, Buffer.concat(parts));
}

/** Contiguous float32 tensors → a state dict and its storages (one storage per tensor). */
export function stateDictOf(tensors: Map<string, { shape: number[]; data: Float32Array }>): {
  dict: OrderedDict;
  storages: Map<string, StorageBytes>;
} {
  const entries: [unknown, unknown][] = [];
  const storages = new Map<string, StorageBytes>();
  let i = 0;
  for (const [name, t] of tensors) {
    const key = String(i++);
    const stride: number[] = [];
    let s = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      stride[d] = s;
      s *= t.shape[d]!;
    }
    entries.push([name, new TensorSpec(key, 'float32', t.data.length, 0, t.shape, stride)]);
    storages.set(key, { dtype: 'float32', bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  return { dict: new OrderedDict(entries), storages };
}
