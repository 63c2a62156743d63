// Reads the stored weights of an .onnx file the converter wrote (inline or in its external data
// file), for tests that check invariants on what was written rather than on what one CPU computes.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';

export interface StoredTensor {
  name: string;
  dims: number[];
  dataType: number;
  bytes: Uint8Array;
}

export function storedTensors(onnxPath: string): StoredTensor[] {
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(onnxPath));
  const data = new Map<string, Buffer>();
  return model.graph!.initializer!.map((init) => {
    const dims = (init.dims ?? []).map(Number);
    let bytes: Uint8Array;
    if (init.dataLocation === onnxProto.onnx.TensorProto.DataLocation.EXTERNAL) {
      const kv = Object.fromEntries((init.externalData ?? []).map((e) => [e.key, e.value])) as Record<
        string,
        string | undefined
      >;
      const file = join(dirname(onnxPath), kv.location ?? '');
      if (!data.has(file)) data.set(file, readFileSync(file));
      const offset = Number(kv.offset ?? 0);
      bytes = data.get(file)!.subarray(offset, offset + Number(kv.length));
    } else bytes = init.rawData ?? new Uint8Array(0);
    return { name: init.name!, dims, dataType: init.dataType!, bytes };
  });
}
