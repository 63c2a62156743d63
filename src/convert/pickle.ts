// A pickle reader that never executes anything.
//
// Python's pickle format is a small stack machine whose GLOBAL/REDUCE opcodes normally import and
// call arbitrary functions. PyTorch checkpoints only need a handful of them (tensor rebuild,
// OrderedDict, storage type tags), so this reader honours exactly those and turns every other
// global into an inert `PickleObject` placeholder. No library does this for Node.js: the npm pickle
// readers either evaluate globals through callbacks or do not handle torch's persistent ids.
// Opcode semantics follow CPython's Lib/pickletools.py documentation.

import { PickleError } from '../core/errors.js';

/** A `module.name` reference read from a GLOBAL opcode. Never resolved to code. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Inert result of calling an unknown global: records what would have been called, nothing more. */
export class PickleObject {
  state: unknown = undefined;
  constructor(
    readonly callee: PickleGlobal,
    readonly args: unknown[],
  ) {}
}

export class PickleTuple {
  constructor(readonly items: unknown[]) {}
}

export type PickleDict = Map<unknown, unknown>;

/** Turns a reduced (global, args) pair into a value; returns undefined to leave it a placeholder. */
export type Reducer = (callee: PickleGlobal, args: unknown[]) => unknown;

export interface UnpickleOptions {
  /** Resolves a persistent id (torch storages). */
  persistentLoad?: (pid: unknown) => unknown;
  /** Honoured constructors, keyed by `module.name`. Anything absent becomes a PickleObject. */
  reducers?: Record<string, Reducer>;
}

const MARK = Symbol('mark');

/** Plain containers every pickle may build; they cannot run code. */
const BUILTIN_REDUCERS: Record<string, Reducer> = {
  'collections.OrderedDict': (_c, args) => (args.length === 0 ? new Map() : undefined),
};

export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  return new Unpickler(data, options).load();
}

/** Byte offset just past the STOP opcode of the pickle that starts at `start` (legacy torch files chain pickles). */
export function unpickleWithEnd(
  data: Uint8Array,
  start: number,
  options: UnpickleOptions = {},
): { value: unknown; end: number } {
  const u = new Unpickler(data, options, start);
  const value = u.load();
  return { value, end: u.position };
}

class Unpickler {
  private pos: number;
  private readonly view: DataView;
  private stack: unknown[] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly reducers: Record<string, Reducer>;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });
  private readonly latin1 = new TextDecoder('latin1');

  constructor(
    private readonly data: Uint8Array,
    private readonly options: UnpickleOptions,
    start = 0,
  ) {
    this.pos = start;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.reducers = { ...BUILTIN_REDUCERS, ...(options.reducers ?? {}) };
  }

  get position(): number {
    return this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.data.length) {
      throw new PickleError(`pickle truncated at byte ${this.pos} (needs ${n} more bytes)`);
    }
  }
  private u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }
  private u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length ${v} too large`);
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError(`pickle truncated: unterminated text line at byte ${this.pos}`);
    const s = this.latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private pop(): unknown {
    if (this.stack.length === 0) throw new PickleError(`stack underflow at byte ${this.pos}`);
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) throw new PickleError(`stack underflow at byte ${this.pos}`);
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      if (this.stack[i] === MARK) {
        const items = this.stack.slice(i + 1);
        this.stack.length = i;
        return items;
      }
    }
    throw new PickleError(`MARK not found at byte ${this.pos}`);
  }
  private memoGet(i: number): unknown {
    if (!this.memo.has(i)) throw new PickleError(`memo key ${i} missing at byte ${this.pos}`);
    return this.memo.get(i);
  }

  private makeGlobal(module: string, name: string): PickleGlobal {
    return new PickleGlobal(module, name);
  }

  private reduce(callee: unknown, args: unknown): unknown {
    const argv = args instanceof PickleTuple ? args.items : [];
    if (callee instanceof PickleGlobal) {
      const reducer = this.reducers[callee.qualified];
      const value = reducer ? reducer(callee, argv) : undefined;
      return value === undefined ? new PickleObject(callee, argv) : value;
    }
    // Calling something that is not a global (e.g. a placeholder) stays inert too.
    return new PickleObject(new PickleGlobal('?', 'call'), argv);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (items.length % 2 !== 0) throw new PickleError('SETITEMS with an odd number of items');
    if (target instanceof Map) {
      for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    } else if (target instanceof PickleObject) {
      // e.g. a dict subclass we did not honour: keep the items as its state.
      const m = target.state instanceof Map ? target.state : new Map<unknown, unknown>();
      for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
      target.state = m;
    } else {
      throw new PickleError('SETITEM(S) on a value that is not a dict');
    }
  }

  private appendItems(target: unknown, items: unknown[]): void {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof PickleObject) {
      const arr = Array.isArray(target.state) ? target.state : [];
      arr.push(...items);
      target.state = arr;
    } else throw new PickleError('APPEND(S) on a value that is not a list');
  }

  load(): unknown {
    for (;;) {
      const op = this.u8();
      switch (op) {
        case 0x80: // PROTO
          this.u8();
          break;
        case 0x95: // FRAME: a length hint only
          this.u64();
          break;
        case 0x2e: // STOP
          return this.pop();
        case 0x28: // MARK
          this.stack.push(MARK);
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.top());
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x49: {
          // INT (text); "00"/"01" are protocol 0 booleans
          const s = this.line();
          if (s === '00') this.stack.push(false);
          else if (s === '01') this.stack.push(true);
          else this.stack.push(parseIntText(s));
          break;
        }
        case 0x4a: // BININT
          this.stack.push(this.i32());
          break;
        case 0x4b: // BININT1
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.u16());
          break;
        case 0x4c: // LONG (text)
          this.stack.push(parseIntText(this.line().replace(/L$/, '')));
          break;
        case 0x8a: // LONG1
          this.stack.push(decodeLong(this.bytes(this.u8())));
          break;
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0) throw new PickleError('LONG4 with negative length');
          this.stack.push(decodeLong(this.bytes(n)));
          break;
        }
        case 0x46: // FLOAT (text)
          this.stack.push(Number.parseFloat(this.line()));
          break;
        case 0x47: {
          // BINFLOAT: big-endian double
          this.need(8);
          this.stack.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x53: // STRING (text, quoted)
          this.stack.push(unquote(this.line()));
          break;
        case 0x54: {
          // BINSTRING
          const n = this.i32();
          if (n < 0) throw new PickleError('BINSTRING with negative length');
          this.stack.push(this.latin1.decode(this.bytes(n)));
          break;
        }
        case 0x55: // SHORT_BINSTRING
          this.stack.push(this.latin1.decode(this.bytes(this.u8())));
          break;
        case 0x56: // UNICODE (raw-unicode-escape text)
          this.stack.push(this.line());
          break;
        case 0x58: // BINUNICODE
          this.stack.push(this.decoder.decode(this.bytes(this.u32())));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.decoder.decode(this.bytes(this.u8())));
          break;
        case 0x8d: // BINUNICODE8
          this.stack.push(this.decoder.decode(this.bytes(this.u64())));
          break;
        case 0x42: // BINBYTES
          this.stack.push(this.bytes(this.u32()));
          break;
        case 0x43: // SHORT_BINBYTES
          this.stack.push(this.bytes(this.u8()));
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          this.stack.push(this.bytes(this.u64()));
          break;
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x61: {
          // APPEND
          const v = this.pop();
          this.appendItems(this.top(), [v]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case 0x6c: // LIST
          this.stack.push(this.popMark());
          break;
        case 0x29: // EMPTY_TUPLE
          this.stack.push(new PickleTuple([]));
          break;
        case 0x74: // TUPLE
          this.stack.push(new PickleTuple(this.popMark()));
          break;
        case 0x85: // TUPLE1
          this.stack.push(new PickleTuple([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PickleTuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PickleTuple([a, b, c]));
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.stack.push(new Map());
          break;
        case 0x64: {
          // DICT
          const m = new Map<unknown, unknown>();
          this.setItems(m, this.popMark());
          this.stack.push(m);
          break;
        }
        case 0x73: {
          // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x8f: // EMPTY_SET (kept as a list: sets never matter here)
          this.stack.push([]);
          break;
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          this.appendItems(this.top(), items);
          break;
        }
        case 0x91: // FROZENSET
          this.stack.push(this.popMark());
          break;
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.stack.push(this.makeGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            throw new PickleError('STACK_GLOBAL needs two strings');
          this.stack.push(this.makeGlobal(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callee = this.pop();
          this.stack.push(this.reduce(callee, args));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args): never honoured
          const args = this.pop();
          const cls = this.pop();
          const callee = cls instanceof PickleGlobal ? cls : new PickleGlobal('?', 'new');
          this.stack.push(new PickleObject(callee, args instanceof PickleTuple ? args.items : []));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          this.pop(); // kwargs
          const args = this.pop();
          const cls = this.pop();
          const callee = cls instanceof PickleGlobal ? cls : new PickleGlobal('?', 'new');
          this.stack.push(new PickleObject(callee, args instanceof PickleTuple ? args.items : []));
          break;
        }
        case 0x69: {
          // INST "module\nname\n" with MARKed args
          const module = this.line();
          const name = this.line();
          this.stack.push(new PickleObject(this.makeGlobal(module, name), this.popMark()));
          break;
        }
        case 0x6f: {
          // OBJ: MARK cls args...
          const items = this.popMark();
          const cls = items.shift();
          const callee = cls instanceof PickleGlobal ? cls : new PickleGlobal('?', 'obj');
          this.stack.push(new PickleObject(callee, items));
          break;
        }
        case 0x62: {
          // BUILD: obj.__setstate__(state), recorded, never run
          const state = this.pop();
          const obj = this.top();
          if (obj instanceof PickleObject) obj.state = state;
          // Tensors and containers ignore BUILD state (torch only uses it for hooks/metadata).
          break;
        }
        case 0x70: // PUT (text)
          this.memo.set(parseSafeInt(this.line()), this.top());
          break;
        case 0x71: // BINPUT
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memo.set(this.u32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memo.set(this.memo.size, this.top());
          break;
        case 0x67: // GET (text)
          this.stack.push(this.memoGet(parseSafeInt(this.line())));
          break;
        case 0x68: // BINGET
          this.stack.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.stack.push(this.memoGet(this.u32()));
          break;
        case 0x50: // PERSID (text)
          this.stack.push(this.persistent(this.line()));
          break;
        case 0x51: // BINPERSID
          this.stack.push(this.persistent(this.pop()));
          break;
        default:
          throw new PickleError(
            `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.pos - 1}`,
          );
      }
    }
  }

  private persistent(pid: unknown): unknown {
    if (!this.options.persistentLoad) throw new PickleError('pickle uses persistent ids but no loader was given');
    return this.options.persistentLoad(pid);
  }
}

function parseSafeInt(s: string): number {
  const n = Number.parseInt(s, 10);
  if (!Number.isSafeInteger(n)) throw new PickleError(`bad integer ${JSON.stringify(s)}`);
  return n;
}

function parseIntText(s: string): number | bigint {
  const b = BigInt(s.trim());
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Little-endian two's-complement integer of any width. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function unquote(s: string): string {
  const q = s[0];
  if ((q === "'" || q === '"') && s.endsWith(q) && s.length >= 2) return s.slice(1, -1);
  throw new PickleError('STRING opcode argument is not quoted');
}
