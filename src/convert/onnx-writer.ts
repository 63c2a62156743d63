// Writes a GraphBuilder as an .onnx file whose weights live in a sidecar `<name>.onnx.data` file
// (ONNX external data), streamed one tensor at a time at page-aligned offsets.
//
// Why external data: ONNX Runtime memory-maps such weights instead of reading the whole protobuf
// into memory and copying every tensor out of it, so a session holds one copy of the weights (its
// pre-packed GEMM layout; docs/performance.md has the memory measured). The converter never holds
// more than one tensor in memory either.
//
// A second graph over the same weights (image_states.onnx next to image.onnx) points into the first
// graph's data file instead of writing the weights again (`shareFrom`).

import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import type onnxProto from 'onnx-proto';
import { byteLengthOf, GraphBuilder, onnx, type DataTypeValue } from './onnx-builder.js';

export const IR_VERSION = 8;
export const OPSET = 17;

/** Tensors smaller than this stay inside the .onnx file. */
const INLINE_MAX = 1024;
/** Offsets in the data file are page-aligned so the runtime can map tensors directly. */
const ALIGN = 4096;

export interface FileInfo {
  bytes: number;
  sha256: string;
}

/** Where each external tensor of a written graph lives, by initializer name. */
export type StoredTensors = Map<
  string,
  { location: string; offset: number; length: number; dims: number[]; dataType: DataTypeValue }
>;

export interface WriteResult {
  model: FileInfo;
  /** The graph's own data file, absent when every external tensor was shared. */
  data?: FileInfo;
  dataFile?: string;
  tensors: StoredTensors;
}

export async function writeOnnx(
  path: string,
  graph: GraphBuilder,
  docString = '',
  options: { shareFrom?: StoredTensors } = {},
): Promise<WriteResult> {
  const dataFile = `${basename(path)}.data`;
  const dataHash = createHash('sha256');
  const fh = await open(`${path}.data`, 'w');
  let offset = 0;
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  const tensors: StoredTensors = new Map();
  const external = (name: string, t: { location: string; offset: number; length: number }) => ({
    name,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: t.location },
      { key: 'offset', value: String(t.offset) },
      { key: 'length', value: String(t.length) },
    ],
  });
  try {
    for (const init of graph.initializers) {
      const shared = init.constant ? undefined : options.shareFrom?.get(init.name);
      if (shared && shared.dataType === init.dataType && shared.dims.join() === init.dims.join()) {
        initializer.push({ ...external(init.name, shared), dims: init.dims, dataType: init.dataType });
        tensors.set(init.name, shared);
        continue;
      }
      const data = await init.load();
      const expected = byteLengthOf(init);
      if (data.byteLength !== expected) {
        throw new Error(
          `initializer ${init.name}: ${data.byteLength} bytes, expected ${expected} for dims [${init.dims.join(',')}]`,
        );
      }
      // ONNX raw data is little-endian: typed arrays are, on every host convert() accepts (it checks).
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (bytes.length < INLINE_MAX) {
        initializer.push({ name: init.name, dims: init.dims, dataType: init.dataType, rawData: bytes });
        continue;
      }
      const padded = Math.ceil(offset / ALIGN) * ALIGN;
      if (padded > offset) {
        const pad = new Uint8Array(padded - offset);
        dataHash.update(pad);
        await writeAll(fh, pad);
      }
      dataHash.update(bytes);
      await writeAll(fh, bytes);
      const stored = {
        location: dataFile,
        offset: padded,
        length: bytes.length,
        dims: init.dims,
        dataType: init.dataType,
      };
      initializer.push({ ...external(init.name, stored), dims: init.dims, dataType: init.dataType });
      tensors.set(init.name, stored);
      offset = padded + bytes.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (offset === 0) await rm(`${path}.data`);

  const model = onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    producerName: 'albef-embed',
    producerVersion: '1',
    docString,
    opsetImport: [{ domain: '', version: OPSET }, ...[...graph.domains].map((domain) => ({ domain, version: 1 }))],
    graph: { name: graph.name, node: graph.nodes, input: graph.inputs, output: graph.outputs, initializer },
  }).finish();
  const mh = await open(path, 'w');
  try {
    await writeAll(mh, model);
    await mh.sync();
  } finally {
    await mh.close();
  }
  return {
    model: { bytes: model.length, sha256: createHash('sha256').update(model).digest('hex') },
    ...(offset > 0 ? { data: { bytes: offset, sha256: dataHash.digest('hex') }, dataFile } : {}),
    tensors,
  };
}

async function writeAll(fh: import('node:fs/promises').FileHandle, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
}
