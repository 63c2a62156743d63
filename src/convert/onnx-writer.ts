// Writes a GraphBuilder to an .onnx file, streaming initializers one at a time.
//
// protobufjs encodes whole messages in memory; for a 350 MB ViT that would hold every weight twice.
// So the small parts (model header, graph without initializers, each TensorProto header) are encoded
// with protobufjs and the length-delimited wrappers around them are written here, with each tensor's
// raw bytes appended as field 9 (raw_data) right after its header. Field order is free in protobuf.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { byteLengthOf, GraphBuilder, onnx, type Initializer } from './onnx-builder.js';

export const IR_VERSION = 8;
export const OPSET = 17;

const TAG_MODEL_GRAPH = (7 << 3) | 2;
const TAG_GRAPH_INITIALIZER = (5 << 3) | 2;
const TAG_TENSOR_RAW_DATA = (9 << 3) | 2;

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

interface PreparedInitializer {
  init: Initializer;
  header: Uint8Array;
  rawLength: number;
  /** Bytes of this TensorProto message (header + raw_data field). */
  messageLength: number;
}

export interface WriteResult {
  bytes: number;
  sha256: string;
}

export async function writeOnnx(path: string, graph: GraphBuilder, docString = ''): Promise<WriteResult> {
  const model = onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    producerName: 'albef-embed',
    producerVersion: '1',
    docString,
    opsetImport: [{ domain: '', version: OPSET }, ...[...graph.domains].map((domain) => ({ domain, version: 1 }))],
  }).finish();
  const graphHead = onnx.GraphProto.encode({
    name: graph.name,
    node: graph.nodes,
    input: graph.inputs,
    output: graph.outputs,
  }).finish();

  const prepared: PreparedInitializer[] = graph.initializers.map((init) => {
    const header = onnx.TensorProto.encode({ name: init.name, dims: init.dims, dataType: init.dataType }).finish();
    const rawLength = byteLengthOf(init);
    const messageLength = header.length + 1 + varint(rawLength).length + rawLength;
    return { init, header, rawLength, messageLength };
  });
  const graphLength = prepared.reduce((n, p) => n + 1 + varint(p.messageLength).length + p.messageLength, graphHead.length);

  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  let bytes = 0;
  const write = async (b: Uint8Array): Promise<void> => {
    hash.update(b);
    bytes += b.length;
    let off = 0;
    while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
  };
  try {
    await write(model);
    await write(Buffer.from([TAG_MODEL_GRAPH]));
    await write(varint(graphLength));
    await write(graphHead);
    for (const p of prepared) {
      const data = await p.init.load();
      if (data.byteLength !== p.rawLength) {
        throw new Error(`initializer ${p.init.name}: ${data.byteLength} bytes, expected ${p.rawLength} for dims [${p.init.dims}]`);
      }
      await write(Buffer.from([TAG_GRAPH_INITIALIZER]));
      await write(varint(p.messageLength));
      await write(p.header);
      await write(Buffer.from([TAG_TENSOR_RAW_DATA]));
      await write(varint(p.rawLength));
      // ONNX raw data is little-endian: typed arrays are, on every host convert() accepts (it checks).
      await write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}
