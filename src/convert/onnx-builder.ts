// A small ONNX graph builder: nodes with generated names, typed attributes, and initializers whose
// data is produced lazily when the model is written (so weights stream from the checkpoint to the
// file one tensor at a time).

import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export const DataType = onnx.TensorProto.DataType;
export type DataTypeValue = (typeof DataType)[keyof typeof DataType];

export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;

export interface Initializer {
  name: string;
  dims: number[];
  dataType: DataTypeValue;
  /** Produces the data when the model is written; called once. */
  load: () => TensorData | Promise<TensorData>;
  /** A deduplicated constant: its generated name means nothing outside its graph. */
  constant?: boolean;
}

/** A float attribute (plain numbers are written as ints). */
export class F {
  constructor(readonly value: number) {}
}
export const f = (v: number): F => new F(v);

export type AttrValue = number | number[] | string | F | F[];

const ELEM_SIZE: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.FLOAT16]: 2,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
};

export function byteLengthOf(init: Pick<Initializer, 'dims' | 'dataType'>): number {
  const size = ELEM_SIZE[init.dataType];
  if (size === undefined) throw new Error(`no element size for data type ${init.dataType}`);
  return init.dims.reduce((a, b) => a * b, 1) * size;
}

export interface OpOptions {
  domain?: string;
  outputs?: number;
  name?: string;
}

export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly domains = new Set<string>();
  private counter = 0;
  private readonly constants = new Map<string, string>();

  constructor(readonly name: string) {}

  private fresh(base: string): string {
    return `${base}_${this.counter++}`;
  }

  input(name: string, elemType: DataTypeValue, shape: (number | string)[]): string {
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, elemType: DataTypeValue, shape: (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, shape));
  }

  /** A named weight whose data is loaded when the model is written. */
  weight(name: string, dims: number[], load: Initializer['load'], dataType: DataTypeValue = DataType.FLOAT): string {
    if (this.initializers.some((i) => i.name === name)) throw new Error(`duplicate initializer ${name}`);
    this.initializers.push({ name, dims, dataType, load });
    return name;
  }

  /** A small constant, deduplicated by value. */
  constant(data: TensorData, dims: number[] = [data.length]): string {
    const dataType = dataTypeOf(data);
    const key = `${dataType}:${dims.join('x')}:${Array.from(data as ArrayLike<number | bigint>).join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh('const');
    this.initializers.push({ name, dims, dataType, load: () => data, constant: true });
    this.constants.set(key, name);
    return name;
  }

  scalar(v: number): string {
    return this.constant(new Float32Array([v]), []);
  }

  int64s(values: number[]): string {
    return this.constant(BigInt64Array.from(values.map(BigInt)));
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: OpOptions = {}): string {
    return this.opN(opType, inputs, attrs, { ...options, outputs: 1 })[0]!;
  }

  opN(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: OpOptions = {}): string[] {
    const name = options.name ?? this.fresh(opType);
    const outputs = Array.from({ length: options.outputs ?? 1 }, (_, i) => `${name}_out${i}`);
    if (options.domain) this.domains.add(options.domain);
    this.nodes.push({
      name,
      opType,
      input: inputs,
      output: outputs,
      domain: options.domain ?? '',
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Renames the output of the last node that produced `from` (to give graph outputs stable names). */
  rename(from: string, to: string): string {
    for (const n of this.nodes) {
      n.output = n.output?.map((o) => (o === from ? to : o)) ?? null;
      n.input = n.input?.map((i) => (i === from ? to : i)) ?? null;
    }
    return to;
  }
}

function dataTypeOf(data: TensorData): DataTypeValue {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof BigInt64Array) return DataType.INT64;
  if (data instanceof Int32Array) return DataType.INT32;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  return DataType.FLOAT16;
}

function valueInfo(name: string, elemType: DataTypeValue, shape: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (v instanceof F) return { name, type: T.FLOAT, f: v.value };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (v.length > 0 && v[0] instanceof F) return { name, type: T.FLOATS, floats: (v as F[]).map((x) => x.value) };
  return { name, type: T.INTS, ints: v as number[] };
}
