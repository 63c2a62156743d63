// Reads PyTorch checkpoints (torch.save) without executing pickle code, with tensors loaded lazily
// from file offsets so that a multi-GB checkpoint never sits in memory whole.
//
// Formats: the zip format of torch >= 1.6 (`<root>/data.pkl` + one stored entry per storage at
// `<root>/data/<key>`) and the legacy format before it (five chained pickles followed by raw
// storages, each prefixed by its element count).

import { open, type FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';
import { CheckpointError, PickleError, WeightsError } from '../core/errors.js';
import { PickleGlobal, PickleTuple, unpickle, unpickleWithEnd, type Reducer } from './pickle.js';
import { DTYPE_SIZE, STORAGE_DTYPES, stridedSpan, toFloat32, type DType } from './tensor-data.js';

export interface StorageRef {
  readonly key: string;
  /** undefined when the storage type is unknown; reading such a tensor fails with a clear error. */
  readonly dtype: DType | undefined;
  readonly typeName: string;
  readonly numel: number;
  /** Element offset into the root storage (legacy storage views). */
  readonly baseOffset: number;
}

export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

interface StorageSource {
  /** Raw bytes [byteStart, byteStart + byteLength) of one storage. */
  read(key: string, byteStart: number, byteLength: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export type CheckpointFormat = 'zip' | 'legacy';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

export class Checkpoint {
  private constructor(
    readonly path: string,
    readonly format: CheckpointFormat,
    /** Flattened state dict: the `model` / `state_dict` entry when there is one, else the root dict. */
    readonly tensors: ReadonlyMap<string, TensorRef>,
    private readonly source: StorageSource,
    private readonly littleEndian: boolean,
  ) {}

  static async open(path: string): Promise<Checkpoint> {
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new CheckpointError('not_a_checkpoint', `cannot open checkpoint ${path}: ${e.code ?? e.message}`, {
        cause: e,
      });
    });
    try {
      const { size } = await fh.stat();
      const head = Buffer.alloc(Math.min(512, size));
      await fh.read(head, 0, head.length, 0);
      if (head.length >= 4 && head.readUInt32BE(0) === 0x504b0304) {
        return await openZip(path, fh, size);
      }
      if (head.length >= 2 && head[0] === 0x80) return await openLegacy(path, fh, size);
      if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
        throw new CheckpointError(
          'unsupported',
          `${path} is a tar-format checkpoint (PyTorch < 0.4); load and re-save it with a current PyTorch`,
        );
      }
      throw new CheckpointError(
        'not_a_checkpoint',
        `${path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)`,
      );
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  has(key: string): boolean {
    return this.tensors.has(key);
  }

  shape(key: string): number[] {
    return this.ref(key).shape;
  }

  private ref(key: string): TensorRef {
    const t = this.tensors.get(key);
    if (!t) throw new WeightsError('missing_tensor', `checkpoint ${this.path} has no tensor ${JSON.stringify(key)}`);
    return t;
  }

  /** The tensor as contiguous float32 (converted from its storage type). */
  async read(key: string): Promise<Float32Array> {
    const t = this.ref(key);
    const { storage } = t;
    if (!storage.dtype) {
      throw new CheckpointError(
        'unsupported',
        `tensor ${JSON.stringify(key)} has unsupported storage type ${storage.typeName}`,
      );
    }
    const size = DTYPE_SIZE[storage.dtype];
    const span = stridedSpan(t.shape, t.stride);
    const first = storage.baseOffset + t.offset;
    if (t.offset < 0 || first + span > storage.numel + storage.baseOffset) {
      throw new CheckpointError('corrupt', `tensor ${JSON.stringify(key)} reaches past the end of its storage`);
    }
    const bytes = await this.source.read(storage.key, first * size, span * size);
    return toFloat32(bytes, storage.dtype, t.shape, t.stride, this.littleEndian);
  }

  async close(): Promise<void> {
    await this.source.close();
  }

  static fromParts(
    path: string,
    format: CheckpointFormat,
    root: unknown,
    source: StorageSource,
    littleEndian: boolean,
  ): Checkpoint {
    return new Checkpoint(path, format, flattenStateDict(root, path), source, littleEndian);
  }
}

// ---- tensor reconstruction (the only constructors honoured) ----

function asInts(v: unknown, what: string): number[] {
  const items = v instanceof PickleTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (!items || !items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    throw new CheckpointError('corrupt', `tensor ${what} is not a tuple of non-negative integers`);
  }
  return items as number[];
}

function rebuildTensor(args: unknown[]): TensorRef | undefined {
  const [storage, offset, size, stride] = args;
  if (!isStorageRef(storage) || typeof offset !== 'number') return undefined;
  const shape = asInts(size, 'size');
  const strides = asInts(stride, 'stride');
  if (strides.length !== shape.length) throw new CheckpointError('corrupt', 'tensor size and stride differ in rank');
  return new TensorRef(storage, offset, shape, strides);
}

function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && 'key' in v && 'numel' in v && 'typeName' in v;
}

const TENSOR_REDUCERS: Record<string, Reducer> = {
  'torch._utils._rebuild_tensor_v2': (_c, args) => rebuildTensor(args),
  'torch._utils._rebuild_tensor': (_c, args) => rebuildTensor(args),
  'torch._utils._rebuild_parameter': (_c, args) => (args[0] instanceof TensorRef ? args[0] : undefined),
  'torch._utils._rebuild_parameter_with_state': (_c, args) => (args[0] instanceof TensorRef ? args[0] : undefined),
};

function storageFromPid(pid: unknown, legacy: boolean): StorageRef {
  const items = pid instanceof PickleTuple ? pid.items : undefined;
  if (!items || items[0] !== 'storage' || !(items[1] instanceof PickleGlobal)) {
    throw new CheckpointError('corrupt', 'unknown persistent id in the checkpoint pickle');
  }
  const [, type, key, , numel, view] = items as [string, PickleGlobal, unknown, unknown, unknown, unknown];
  if (typeof key !== 'string' || typeof numel !== 'number')
    throw new CheckpointError('corrupt', 'malformed storage persistent id');
  let baseOffset = 0;
  let rootNumel = numel;
  if (legacy && view instanceof PickleTuple) {
    // (view_key, offset, view_size): a view into the root storage `key`
    const [, off, viewSize] = view.items;
    if (typeof off !== 'number' || typeof viewSize !== 'number')
      throw new CheckpointError('corrupt', 'malformed storage view');
    baseOffset = off;
    rootNumel = viewSize;
  }
  return { key, dtype: STORAGE_DTYPES[type.name], typeName: type.qualified, numel: rootNumel, baseOffset };
}

function flattenStateDict(root: unknown, path: string): Map<string, TensorRef> {
  if (!(root instanceof Map)) throw new CheckpointError('corrupt', `${path}: the checkpoint does not hold a dict`);
  let dict: Map<unknown, unknown> = root;
  for (const k of ['model', 'state_dict', 'module']) {
    const inner: unknown = root.get(k);
    if (inner instanceof Map) {
      dict = inner;
      break;
    }
  }
  const out = new Map<string, TensorRef>();
  for (const [k, v] of dict) {
    if (typeof k === 'string' && v instanceof TensorRef) out.set(k.startsWith('module.') ? k.slice(7) : k, v);
  }
  if (out.size === 0) throw new CheckpointError('corrupt', `${path}: no tensors found in the checkpoint's state dict`);
  return out;
}

function wrapPickleError(e: unknown, path: string): never {
  if (e instanceof PickleError) {
    const code = /truncated/.test(e.message) ? 'truncated' : 'corrupt';
    throw new CheckpointError(code, `${path}: ${e.message}`, { cause: e });
  }
  throw e;
}

// ---- zip format ----

async function openZip(path: string, fh: FileHandle, fileSize: number): Promise<Checkpoint> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromFdPromise(fh.fd, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  } catch (e) {
    throw new CheckpointError(
      'truncated',
      `${path}: not a complete zip archive (${(e as Error).message}); the file is truncated or corrupt`,
      { cause: e },
    );
  }
  const entries = new Map<string, yauzl.Entry>();
  try {
    for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry);
  } catch (e) {
    throw new CheckpointError('corrupt', `${path}: bad zip central directory (${(e as Error).message})`, { cause: e });
  }
  const pkl = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) {
    throw new CheckpointError(
      'not_a_checkpoint',
      `${path}: a zip archive without exactly one <root>/data.pkl, so not a PyTorch checkpoint`,
    );
  }
  const rootDir = pkl[0]!.slice(0, -'data.pkl'.length);
  const readEntry = async (entry: yauzl.Entry, start: number, length: number): Promise<Uint8Array> => {
    if (start + length > entry.uncompressedSize) {
      throw new CheckpointError('corrupt', `${path}: read past the end of ${entry.fileName}`);
    }
    if (entry.compressionMethod === 0) {
      const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
      if (fileDataStart + entry.compressedSize > fileSize) {
        throw new CheckpointError('truncated', `${path}: ${entry.fileName} ends past the end of the file`);
      }
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, fileDataStart + start);
      if (bytesRead !== length) throw new CheckpointError('truncated', `${path}: short read in ${entry.fileName}`);
      return buf;
    }
    // A re-compressed archive: inflate the whole entry, then slice.
    const stream = await zip.openReadStreamPromise(entry);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks).subarray(start, start + length);
  };
  const entryOf = (name: string): yauzl.Entry => {
    const e = entries.get(rootDir + name);
    if (!e) throw new CheckpointError('corrupt', `${path}: archive entry ${rootDir + name} is missing`);
    return e;
  };

  let littleEndian = true;
  const bo = entries.get(rootDir + 'byteorder');
  if (bo)
    littleEndian =
      Buffer.from(await readEntry(bo, 0, bo.uncompressedSize))
        .toString('latin1')
        .trim() !== 'big';

  const pklEntry = entryOf('data.pkl');
  const pklBytes = await readEntry(pklEntry, 0, pklEntry.uncompressedSize);
  let root: unknown;
  try {
    root = unpickle(pklBytes, { persistentLoad: (pid) => storageFromPid(pid, false), reducers: TENSOR_REDUCERS });
  } catch (e) {
    wrapPickleError(e, path);
  }
  const source: StorageSource = {
    read: (key, start, length) => readEntry(entryOf(`data/${key}`), start, length),
    // Only the FileHandle closes the descriptor (yauzl's close() would close the same fd again).
    close: () => fh.close(),
  };
  return Checkpoint.fromParts(path, 'zip', root, source, littleEndian);
}

// ---- legacy format (torch < 1.6) ----

async function openLegacy(path: string, fh: FileHandle, fileSize: number): Promise<Checkpoint> {
  // The pickles come first and are small; read a growing head until they parse.
  let headSize = Math.min(fileSize, 4 << 20);
  for (;;) {
    const head = Buffer.alloc(headSize);
    await fh.read(head, 0, headSize, 0);
    const storages = new Map<string, StorageRef>();
    try {
      const opts = {
        persistentLoad: (pid: unknown) => remember(storages, storageFromPid(pid, true)),
        reducers: TENSOR_REDUCERS,
      };
      const magic = unpickleWithEnd(head, 0);
      if (magic.value !== LEGACY_MAGIC)
        throw new CheckpointError(
          'not_a_checkpoint',
          `${path}: a pickle, but not a PyTorch checkpoint (bad magic number)`,
        );
      const proto = unpickleWithEnd(head, magic.end);
      if (proto.value !== 1001)
        throw new CheckpointError('unsupported', `${path}: legacy protocol ${String(proto.value)} is not supported`);
      const sysInfo = unpickleWithEnd(head, proto.end);
      const littleEndian = !(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== false;
      const obj = unpickleWithEnd(head, sysInfo.end, opts);
      const keys = unpickleWithEnd(head, obj.end);
      if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
        throw new CheckpointError('corrupt', `${path}: malformed storage key list`);
      }
      const offsets = await scanLegacyStorages(path, fh, fileSize, keys.end, keys.value, storages, littleEndian);
      const source: StorageSource = {
        read: async (key, start, length) => {
          const at = offsets.get(key);
          if (at === undefined) throw new CheckpointError('corrupt', `${path}: storage ${key} is missing`);
          const buf = Buffer.allocUnsafe(length);
          const { bytesRead } = await fh.read(buf, 0, length, at + start);
          if (bytesRead !== length) throw new CheckpointError('truncated', `${path}: short read in storage ${key}`);
          return buf;
        },
        close: () => fh.close(),
      };
      return Checkpoint.fromParts(path, 'legacy', obj.value, source, littleEndian);
    } catch (e) {
      if (e instanceof PickleError && /truncated/.test(e.message) && headSize < fileSize) {
        headSize = Math.min(fileSize, headSize * 4);
        continue;
      }
      wrapPickleError(e, path);
    }
  }
}

function remember(storages: Map<string, StorageRef>, ref: StorageRef): StorageRef {
  const known = storages.get(ref.key);
  // Views of one root storage share its key; keep the root's element type for the scan.
  if (!known) storages.set(ref.key, { ...ref, baseOffset: 0 });
  return ref;
}

async function scanLegacyStorages(
  path: string,
  fh: FileHandle,
  fileSize: number,
  start: number,
  keys: string[],
  storages: Map<string, StorageRef>,
  littleEndian: boolean,
): Promise<Map<string, number>> {
  const offsets = new Map<string, number>();
  const countBuf = Buffer.alloc(8);
  let pos = start;
  for (const key of keys) {
    const ref = storages.get(key);
    if (!ref?.dtype) throw new CheckpointError('unsupported', `${path}: storage ${key} has an unknown element type`);
    const { bytesRead } = await fh.read(countBuf, 0, 8, pos);
    if (bytesRead !== 8) throw new CheckpointError('truncated', `${path}: the file ends inside storage ${key}`);
    const count = Number(littleEndian ? countBuf.readBigInt64LE(0) : countBuf.readBigInt64BE(0));
    const bytes = count * DTYPE_SIZE[ref.dtype];
    offsets.set(key, pos + 8);
    pos += 8 + bytes;
    if (count < 0 || pos > fileSize)
      throw new CheckpointError('truncated', `${path}: the file ends inside storage ${key}`);
  }
  return offsets;
}
