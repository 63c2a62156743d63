// Ajv's validation errors → one sentence that names the field, what it takes and what it got
// (`encoding_format must be one of "float", "base64" (got "float16")`), for every route at once.
// Ajv reports a failed union as every branch's error plus "must match a schema in anyOf"; Fastify
// joins them with commas. No library turns that into the one error the client made (ajv-errors
// needs a message written into each schema), so this picks it: the union branch of the value's own
// type (an array, an object with that branch's required fields), down to the deepest error there.

import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import type { TSchema } from 'typebox';
import { SHARED_SCHEMAS } from './schemas/registry.js';

/** An Ajv error object with `verbose: true` (the app's Ajv options): the failing value and schema too. */
interface AjvError extends FastifySchemaValidationError {
  data?: unknown;
  schema?: unknown;
  parentSchema?: Schema;
}

interface Schema {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
}

const NAMED = new Map<string, Schema>(
  SHARED_SCHEMAS.map((s: TSchema) => [(s as { $id?: string }).$id!, s as unknown as Schema]),
);

const resolve = (s: Schema): Schema => (s.$ref !== undefined ? (NAMED.get(s.$ref) ?? s) : s);

/** `/input/1/text` → `input[1].text`. */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, seg) => (/^\d+$/.test(seg) ? `${path}[${seg}]` : path ? `${path}.${seg}` : seg), '');
}

const jsonType = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? 'number' : typeof v;

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null',
};

const typeWords = (type: unknown): string =>
  (Array.isArray(type) ? type : [type]).map((t) => TYPE_WORDS[String(t)] ?? String(t)).join(' or ');

const keyList = (keys: string[]): string => `{${keys.map((k) => JSON.stringify(k)).join(', ')}}`;

/** A value as the sentence quotes it: short scalars as JSON, objects by their keys. */
function got(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    return keys.length ? keyList(keys.length > 5 ? [...keys.slice(0, 5), '…'] : keys) : '{}';
  }
  return JSON.stringify(v) ?? typeof v;
}

/** `a, b or c`. */
const alternatives = (items: string[]): string =>
  items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items.at(-1)}` : (items[0] ?? 'something else');

/** What one branch of a union takes, in the API docs' words (`{"text"}` for an object with a text). */
function describe(s: Schema): string {
  const b = resolve(s);
  if ('const' in b) return JSON.stringify(b.const);
  if (b.enum) return b.enum.map((v) => JSON.stringify(v)).join(', ');
  if (b.properties) return keyList(b.required ?? Object.keys(b.properties));
  return typeWords(b.type);
}

const literals = (branches: Schema[]): unknown[] | undefined =>
  branches.every((b) => 'const' in b || b.enum)
    ? branches.flatMap((b) => ('const' in b ? [b.const] : (b.enum ?? [])))
    : undefined;

/** Whether a branch takes values of v's JSON type (and, for objects, has its required fields). */
function fits(s: Schema, v: unknown): boolean {
  const b = resolve(s);
  const type = jsonType(v);
  const types = b.type === undefined ? (b.properties ? ['object'] : []) : ([] as string[]).concat(b.type);
  const typed = types.includes(type) || (type === 'number' && types.includes('integer') && Number.isInteger(v));
  if (!typed) return false;
  if (type !== 'object') return true;
  return (b.required ?? []).every((k) => Object.hasOwn(v as object, k));
}

/**
 * The error the client made among `errors`, the one at `k` failing: with allErrors off, the last
 * error is the one that failed, and a union's branch errors come just before it.
 */
function pick(errors: AjvError[], k: number): AjvError {
  const e = errors[k]!;
  if (e.keyword !== 'anyOf' || !Array.isArray(e.schema)) return e;
  const branches = e.schema as Schema[];
  if (literals(branches.map(resolve))) return e;
  const fitting = branches.map((b, i) => (fits(b, e.data) ? i : -1)).filter((i) => i >= 0);
  if (fitting.length !== 1) return e;
  const i = fitting[0]!;
  const ref = branches[i]!.$ref;
  const inBranch = (x: AjvError): boolean =>
    ref !== undefined ? x.schemaPath.startsWith(`${ref}/`) || x.schemaPath.startsWith(`${ref}#`) : true;
  const at = e.instancePath;
  for (let j = k - 1; j >= 0; j--) {
    const x = errors[j]!;
    // Deeper errors come only from the fitting branch: the others failed on their type at `at`.
    if (x.instancePath.startsWith(`${at}/`) && inBranch(x)) return pick(errors, j);
  }
  for (let j = k - 1; j >= 0; j--) {
    const x = errors[j]!;
    if (x.instancePath !== at) continue;
    const own = ref !== undefined ? inBranch(x) : x.schemaPath.startsWith(`${e.schemaPath}/${i}/`);
    if (own) return pick(errors, j);
  }
  return e;
}

/** The sentence for one error; `subject` names the field (`texts[2]`, `query parameter model`). */
function sentence(e: AjvError, subject: string, root: boolean, context: string): string {
  const p = e.params;
  const gotten = 'data' in e ? ` (got ${got(e.data)})` : '';
  const what = context === 'querystring' ? 'query parameter' : 'field';
  const listed = (s: Schema | undefined) => Object.keys(resolve(s ?? {}).properties ?? {}).join(', ');
  switch (e.keyword) {
    case 'type':
      return root && context === 'body'
        ? `the body must be a JSON object${gotten}`
        : `${subject} must be ${typeWords(p.type)}${gotten}`;
    case 'const':
      return `${subject} must be ${JSON.stringify(p.allowedValue)}${gotten}`;
    case 'enum':
      return `${subject} must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}${gotten}`;
    case 'anyOf': {
      const branches = (e.schema as Schema[]).map(resolve);
      const values = literals(branches);
      if (values) return `${subject} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}${gotten}`;
      return `${subject} must be ${alternatives(branches.map(describe))}${gotten}`;
    }
    case 'additionalProperties': {
      const unknown = `unknown ${what} ${JSON.stringify(p.additionalProperty)}`;
      const known = listed(e.parentSchema);
      const tail = known ? ` (${what === 'field' ? 'fields' : 'query parameters'}: ${known})` : '';
      return root ? `${unknown}${tail}` : `${subject} has an ${unknown}${tail}`;
    }
    case 'required': {
      const missing = `missing ${what} ${JSON.stringify(p.missingProperty)}`;
      return root ? missing : `${subject} is ${missing}`;
    }
    case 'minItems':
    case 'maxItems': {
      const n = Number(p.limit);
      const bound = e.keyword === 'minItems' ? 'at least' : 'at most';
      const count = Array.isArray(e.data) ? ` (got ${e.data.length})` : '';
      return `${subject} must have ${bound} ${n} item${n === 1 ? '' : 's'}${count}`;
    }
    case 'minLength':
    case 'maxLength': {
      const n = Number(p.limit);
      const bound = e.keyword === 'minLength' ? 'at least' : 'at most';
      const count = typeof e.data === 'string' ? ` (got ${e.data.length})` : '';
      return `${subject} must be ${bound} ${n} character${n === 1 ? '' : 's'} long${count}`;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const bound = {
        minimum: 'at least',
        maximum: 'at most',
        exclusiveMinimum: 'more than',
        exclusiveMaximum: 'less than',
      }[e.keyword];
      return `${subject} must be ${bound} ${String(p.limit)}${gotten}`;
    }
    case 'pattern':
      return `${subject} must match ${String(p.pattern)}${gotten}`;
    case 'format':
      return `${subject} must be a valid ${String(p.format)}${gotten}`;
    default:
      return `${subject} ${e.message ?? 'is not valid'}`;
  }
}

/** One validation failure (Fastify's `error.validation` and `error.validationContext`) in a sentence, and its field. */
export function explainValidation(
  errors: FastifySchemaValidationError[],
  context = 'body',
): { message: string; param?: string } {
  if (errors.length === 0) return { message: `the ${context} is not valid` };
  const e = pick(errors, errors.length - 1);
  const path = fieldPath(e.instancePath);
  const p = e.params as { additionalProperty?: string; missingProperty?: string };
  const param = path.split(/[.[]/)[0] || p.additionalProperty || p.missingProperty;
  const subject =
    context === 'querystring'
      ? `query parameter ${path}`
      : context === 'body'
        ? path || 'the body'
        : `${context} ${path}`.trim();
  return { message: sentence(e, subject, path === '', context), param };
}

/** The same sentence for a field the handler checks itself (multipart fields are strings). */
export function notOneOf(field: string, values: string[], value: string): string {
  return `${field} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')} (got ${got(value)})`;
}
