// The service configuration: one schema that gives every option its type, default, description,
// command-line flag (--kebab-case) and environment twin (ALBEF_SNAKE_CASE). Parsed and validated
// once at start; everything else receives the resulting plain object.

import Type, { type Static, type TSchema } from 'typebox';
import Value from 'typebox/value';
import { parseArgv, type OptionSpecs } from '../core/argv.js';
import { usableCpus } from '../core/cpus.js';
import { BATCH_DEFAULTS } from '../inference/providers.js';
import { ConfigError, UsageError } from '../core/errors.js';

const Int = (def: number, description: string, minimum = 0) => Type.Integer({ default: def, minimum, description });
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description });
const Str = (def: string, description: string) => Type.String({ default: def, description });
const List = (def: string[], description: string) =>
  Type.Array(Type.String({ minLength: 1 }), { default: def, description });

export const ConfigSchema = Type.Object({
  models: List(
    ['./models'],
    'model directories to serve (comma-separated or repeated); the first is the default model. A directory of model directories also works',
  ),
  host: Str('127.0.0.1', 'address to listen on (0.0.0.0 in containers)'),
  port: Int(8080, 'TCP port', 0),
  provider: Type.Union(
    [Type.Literal('default'), Type.Literal('cpu'), Type.Literal('cuda'), Type.Literal('webgpu'), Type.Literal('auto')],
    {
      default: 'default',
      description:
        'ONNX Runtime execution provider: default (CUDA where its binaries are installed and it starts, else cpu), cpu, cuda, webgpu, or auto (the first of cuda, webgpu, cpu that loads and runs a first inference). GET /models says why others were skipped. cpu, cuda or webgpu named here that cannot run the model is a load error, never a CPU fallback',
    },
  ),
  intraOpThreads: Int(
    0,
    "ONNX Runtime threads per tower, shared equally by the tower's sessions (0 = one per usable CPU, a cgroup quota counted)",
  ),
  imageSessions: Int(
    1,
    'ONNX Runtime sessions of the image tower, running batches side by side: more images/s under load, a copy of the weights each, fewer threads for a lone image',
    1,
  ),
  textSessions: Int(
    1,
    'ONNX Runtime sessions of the text tower, running batches side by side: more texts/s under load, a copy of the weights each, fewer threads for a lone text',
    1,
  ),
  decodeThreads: Type.Integer({
    default: usableCpus(),
    minimum: 1,
    description: 'image decode/resize worker threads (default: one per usable CPU, a cgroup quota counted)',
    // The default depends on the machine: said in words where options are listed.
    defaultText: 'one per CPU',
  }),
  maxBatchImages: Int(
    0,
    `largest image batch per inference (0 = by the provider each tower got: ${BATCH_DEFAULTS.cpu.image} on CPU, measured best; ${BATCH_DEFAULTS.webgpu.image} on GPUs)`,
  ),
  maxBatchTexts: Int(
    0,
    `largest text batch per inference (0 = by provider: ${BATCH_DEFAULTS.cpu.text} on CPU, ${BATCH_DEFAULTS.webgpu.text} on GPUs)`,
  ),
  batchWaitMs: Int(
    0,
    'how long an idle tower waits for more items before running a batch (ms); batches also form from items that queue while a batch runs',
  ),
  batchSettleMs: Int(
    5,
    'after a batch of several texts, how long the idle text tower waits for the next arrival while fewer are queued than were in play (ms, 0 = start at once); keeps batches whole under concurrent load',
  ),
  batchFillWaitMs: Int(30, 'how long an idle image tower waits for images still being decoded to fill its batch (ms)'),
  decodeGateMs: Int(
    1000,
    'longest an image decode waits for a running CPU inference to end before it starts anyway (ms; 0 = no waiting)',
  ),
  store: Type.String({
    default: './collections',
    description:
      'where collections live: a directory (embedded LanceDB; the default one is only used once it exists) or a postgres:// URL (PostgreSQL with pgvector); --no-store serves none',
    // `--no-store` sets it empty.
    noneFlag: true,
  }),
  fusion: Bool(
    true,
    'load the image–text matching graphs of models that have them (/v1/rerank, /classify with itm); --no-fusion saves their memory',
  ),
  maxBatchPairs: Int(32, 'largest batch of image–text pairs per fusion (ITM) inference', 1),
  stateCacheImages: Int(
    64,
    'images whose matching states (every image token) are kept per model, so repeated re-ranks of a gallery skip decoding and the image tower (0 = off; 1.69 MiB each for ViT-B/16 at 384 px)',
  ),
  maxQueueImages: Int(
    64,
    'images queued, being fetched or being decoded per model before requests get 503; also the most one request can carry (413 beyond; images in the state cache take no place)',
    1,
  ),
  maxQueueTexts: Int(1024, 'texts queued per model before requests get 503 (and the most per request)', 1),
  maxQueuePairs: Int(
    1024,
    'image–text pairs queued per model before requests get 503 (and the most distinct pairs per request)',
    1,
  ),
  requestTimeoutMs: Int(30000, 'deadline for an item from arrival to inference (504 past it)', 1),
  bodyLimitBytes: Int(64 * 1024 * 1024, 'largest request body (JSON or multipart)', 1024),
  maxItems: Int(
    256,
    'most texts, images, documents or labels in one request (texts and images together on /v1/embeddings); images are also held to --max-queue-images',
    1,
  ),
  maxTextChars: Int(10000, 'longest text accepted (characters, before tokenizing)', 1),
  maxImageBytes: Int(20 * 1024 * 1024, 'largest encoded image', 1),
  maxImagePixels: Int(40_000_000, 'largest decoded image (width × height), checked from the header', 1),
  allowPrivateUrls: Bool(false, 'let image URLs reach private, loopback and link-local addresses'),
  urlTimeoutMs: Int(10000, 'total time to fetch one image URL (ms)', 1),
  urlMaxBytes: Int(20 * 1024 * 1024, 'largest image fetched from a URL', 1),
  urlMaxRedirects: Int(3, 'redirects followed per image URL'),
  apiKey: List(
    [],
    'API keys accepted as "Authorization: Bearer KEY" or "x-api-key: KEY" (repeat or comma-separate for several); none = no auth. /healthz, /readyz and /metrics stay open',
  ),
  cors: Bool(false, 'send CORS headers allowing any origin'),
  ui: Bool(true, 'serve the web page at / (search and classify your own images in the browser); --no-ui turns it off'),
  warmup: Bool(
    true,
    'run one inference per tower before reporting ready (--no-warmup: /readyz is 200 once the models are loaded, and the first requests pay the first-run cost)',
  ),
  fetch: Type.Union([Type.Literal(''), Type.Literal('albef_4m'), Type.Literal('albef_14m')], {
    default: '',
    description:
      'when no model is found, download and convert this official one (albef_4m or albef_14m) into the first --models directory',
  }),
  onLoadError: Type.Union([Type.Literal('exit'), Type.Literal('not-ready')], {
    default: 'exit',
    description:
      'when a model fails to load: exit with code 1, or keep running with /readyz 503 (and /healthz 200) for inspection',
  }),
  logLevel: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    {
      default: 'info',
      description: 'log level (JSON lines via pino with request ids; an x-request-id header is honoured and echoed)',
    },
  ),
});

export type Config = Static<typeof ConfigSchema>;
export type ConfigKey = keyof Config;

export const flagOf = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const envOf = (key: string): string => `ALBEF_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

function properties(): [string, TSchema & { default?: unknown; description?: string; type?: string }][] {
  return Object.entries(ConfigSchema.properties);
}

/** The words a boolean environment variable may hold, in any case. */
export const BOOLEAN_WORDS = { true: ['true', '1', 'yes', 'on'], false: ['false', '0', 'no', 'off'] } as const;

/** "true or false (or 1/0, yes/no, on/off)": the accepted words, for errors and docs. */
export const booleanWords = (): string =>
  `${BOOLEAN_WORDS.true[0]} or ${BOOLEAN_WORDS.false[0]} (or ${BOOLEAN_WORDS.true
    .slice(1)
    .map((w, i) => `${w}/${BOOLEAN_WORDS.false[i + 1]}`)
    .join(', ')})`;

function envBoolean(name: string, v: string): boolean {
  const word = v.trim().toLowerCase();
  if ((BOOLEAN_WORDS.true as readonly string[]).includes(word)) return true;
  if ((BOOLEAN_WORDS.false as readonly string[]).includes(word)) return false;
  throw new ConfigError(`${name} must be ${booleanWords()} (got ${JSON.stringify(v)})`);
}

/** Flags (highest priority), then environment variables, then defaults; validated against the schema. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const options: OptionSpecs = {};
  for (const [key, schema] of properties()) {
    options[flagOf(key)] = {
      type: schema.type === 'boolean' ? 'boolean' : 'string',
      multiple: schema.type === 'array',
    };
    if (schema.type === 'boolean' || (schema as { noneFlag?: boolean }).noneFlag)
      options[`no-${flagOf(key)}`] = { type: 'boolean' };
  }
  let values: Record<string, unknown>;
  try {
    values = parseArgv(argv, options).values;
  } catch (e) {
    if (e instanceof UsageError) throw new ConfigError(e.message);
    throw e;
  }
  const raw: Record<string, unknown> = {};
  /** Where each value came from, to name it in an error: the flag given, or the environment variable. */
  const origins: Record<string, string> = {};
  for (const [key, schema] of properties()) {
    const flag = flagOf(key);
    let v: unknown = values[flag];
    if (values[`no-${flag}`]) v = schema.type === 'boolean' ? false : '';
    if (v !== undefined) origins[key] = `--${flag}`;
    else if (env[envOf(key)] !== undefined && env[envOf(key)] !== '') v = env[envOf(key)];
    if (v === undefined) continue;
    if (schema.type === 'array') {
      const parts = (Array.isArray(v) ? v : [v])
        .flatMap((s) => String(s).split(','))
        .map((s) => s.trim())
        .filter(Boolean);
      raw[key] = parts;
    } else if (schema.type === 'boolean' && typeof v === 'string') {
      raw[key] = envBoolean(envOf(key), v);
    } else if (schema.type === 'integer' && typeof v === 'string') {
      raw[key] = /^-?\d+$/.test(v.trim()) ? Number(v) : v;
    } else raw[key] = v;
  }
  return resolveConfig(raw, origins);
}

/** What is wrong with `value` for option `key`, in words: the values or range its schema allows. */
function problem(key: string, value: unknown): string {
  const s = (ConfigSchema.properties as unknown as Record<string, Record<string, unknown>>)[key]!;
  const got = `(got ${JSON.stringify(value)})`;
  const literals = (s.anyOf as { const?: unknown }[] | undefined)?.map((a) => String(a.const));
  if (literals) {
    const named = literals.filter(Boolean);
    return `must be one of ${named.join(', ')} ${got}`;
  }
  if (s.type === 'integer') {
    const min = s.minimum as number | undefined;
    return `must be a whole number${min !== undefined ? ` of at least ${min}` : ''} ${got}`;
  }
  if (s.type === 'boolean') return `must be true or false ${got}`;
  if (s.type === 'array') return `must be a list of non-empty values ${got}`;
  return `must be a ${String(s.type)} ${got}`;
}

/**
 * Defaults applied to a partial config, then validated (used by loadConfig and by tests). Each
 * invalid option is said once, named by `origins` (the flag or variable it came from) where known.
 */
export function resolveConfig(
  partial: Partial<Config> | Record<string, unknown>,
  origins: Record<string, string> = {},
): Config {
  const unknown = Object.keys(partial).filter((k) => !(k in ConfigSchema.properties));
  if (unknown.length) throw new ConfigError(`unknown configuration keys: ${unknown.join(', ')}`);
  const value = Value.Default(ConfigSchema, structuredClone(partial)) as Record<string, unknown>;
  if (!Value.Check(ConfigSchema, value)) {
    const keys = new Set([...Value.Errors(ConfigSchema, value)].map((e) => e.instancePath.split('/')[1] ?? ''));
    const errors = [...keys].map(
      (key) => `${origins[key] ?? `--${flagOf(key)} (${envOf(key)})`} ${problem(key, value[key])}`,
    );
    throw new ConfigError(`invalid configuration: ${errors.join('; ')}`);
  }
  return value;
}

export interface OptionRow {
  flag: string;
  env: string;
  default: string;
  /** The values allowed, for options that take one of a few. */
  values?: string[];
  description: string;
}

/** The options table for --help and docs/configuration.md. */
export function describeConfig(): OptionRow[] {
  return properties().map(([key, s]) => {
    const literals = (s as { anyOf?: { const?: unknown }[] }).anyOf?.map((a) => String(a.const));
    const shown = (s as { defaultText?: string }).defaultText;
    return {
      flag: `--${flagOf(key)}`,
      env: envOf(key),
      default: shown ?? (Array.isArray(s.default) ? s.default.join(',') : String(s.default)),
      ...(literals ? { values: literals } : {}),
      description: s.description ?? '',
    };
  });
}
