// The command-line parse every command shares (src/core/argv.ts) and the service options' errors
// (src/service/config.ts): several paths after --images as a shell expands a glob, stray arguments
// named, the closest flag for a typo, one message per invalid option with the values it takes, and
// the boolean words of the environment.

import t from 'tap';
import { closest, parseArgv } from '../../src/core/argv.js';
import { ConfigError, UsageError } from '../../src/core/errors.js';
import { serveUsage } from '../../src/cli/serve-command.js';
import { describeConfig, loadConfig } from '../../src/service/config.js';

const options = {
  model: { type: 'string' },
  text: { type: 'string', multiple: true },
  images: { type: 'string', multiple: true, variadic: true },
  force: { type: 'boolean' },
} as const;

/** The UsageError message parseArgv throws for `args`. */
function refusal(args: string[], positionals = 0): string {
  try {
    parseArgv(args, options, { positionals });
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(args)}`);
}

t.test('--images takes the paths after it (an expanded glob) and repeats add up', async (t) => {
  t.same(parseArgv(['--images', 'a.jpg', 'b.jpg', 'c.jpg', '--model', 'm'], options).values, {
    images: ['a.jpg', 'b.jpg', 'c.jpg'],
    model: 'm',
  });
  t.same(parseArgv(['--images', 'a', '--images', 'b'], options).values.images, ['a', 'b'], 'both, not the last');
  t.same(parseArgv(['--text', 'a', '--text', 'b'], options).values.text, ['a', 'b']);
  t.same(parseArgv(['--text=-5 degrees'], options).values.text, ['-5 degrees'], 'a value that starts with a dash');
});

t.test('stray arguments are refused by name', async (t) => {
  t.equal(
    refusal(['--text', 'a', 'extra']),
    'unexpected argument "extra" (--text takes one value: put quotes around a value with spaces, or repeat --text for several)',
  );
  t.equal(
    refusal(['--model', 'm', 'x', 'y']),
    'unexpected arguments "x", "y" (--model takes one value: put quotes around a value with spaces)',
  );
  t.equal(refusal(['--force', 'now']), 'unexpected argument "now"');
  t.same(parseArgv(['albef_4m'], options, { positionals: 1 }).positionals, ['albef_4m'], 'a command that takes one');
  t.equal(refusal(['a', 'b'], 1), 'unexpected argument "b"');
  t.equal(refusal(['--model', 'a', '--model', 'b']), '--model is given twice: it takes one value');
});

t.test('an unknown flag: said plainly, with the closest known one', async (t) => {
  t.equal(refusal(['--txt', 'a']), 'unknown option --txt (did you mean --text?)');
  t.equal(refusal(['--frce']), 'unknown option --frce (did you mean --force?)');
  t.equal(refusal(['--completely-else']), 'unknown option --completely-else');
  t.equal(refusal(['-x']), 'unknown option -x');
  t.notMatch(refusal(['--txt', 'a']), /--\s+"/, 'no garbled "-- \\"--txt\\"" hint');
  t.equal(refusal(['--model']), '--model needs a value');
  t.equal(
    refusal(['--model', '--force']),
    '--model needs a value (it is followed by --force; for a value that starts with "-", write --model=--force)',
  );
  t.equal(refusal(['--force=yes']), '--force takes no value (got --force=yes)');
  t.equal(closest('embd', ['serve', 'embed', 'merge']), 'embed');
  t.equal(closest('xyz', ['serve', 'embed']), undefined);
});

/** The ConfigError message loadConfig throws. */
function configRefusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('accepted');
}

t.test('service options: each invalid one said once, with the values it takes', async (t) => {
  const provider = describeConfig().find((r) => r.flag === '--provider')!.values!;
  t.equal(
    configRefusal(['--provider', 'gpu']),
    `invalid configuration: --provider must be one of ${provider.join(', ')} (got "gpu")`,
  );
  t.notMatch(configRefusal(['--provider', 'gpu']), /equal to constant/);
  t.equal(
    configRefusal([], { ALBEF_ON_LOAD_ERROR: 'later' }),
    'invalid configuration: --on-load-error (ALBEF_ON_LOAD_ERROR) must be one of exit, not-ready (got "later")',
  );
  t.equal(
    configRefusal(['--port', 'eighty', '--log-level', 'loud']),
    'invalid configuration: --port must be a whole number of at least 0 (got "eighty"); --log-level must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
  );
  t.equal(configRefusal(['--cros']), 'unknown option --cros (did you mean --cors?)');
  t.equal(configRefusal(['--no-warmpu']), 'unknown option --no-warmpu (did you mean --no-warmup?)');
  t.equal(configRefusal(['models']), 'unexpected argument "models"');
});

t.test('serve --help lists the values of the options that take one of a few', async (t) => {
  const usage = serveUsage();
  for (const r of describeConfig().filter((r) => r.values)) {
    const line = usage.split('\n').find((l) => l.startsWith(`  ${r.flag} `))!;
    t.ok(line.includes(`(one of ${r.values!.filter(Boolean).join(', ')})`), `${r.flag}: ${line.slice(0, 60)}…`);
  }
  for (const flag of ['--on-load-error', '--log-level', '--provider', '--fetch'])
    t.ok(
      describeConfig().some((r) => r.flag === flag && r.values),
      `${flag} has values`,
    );
});

t.test('boolean environment values: true/false, 1/0, yes/no, on/off, in any case', async (t) => {
  for (const [word, ui] of [
    ['off', false],
    ['On', true],
    ['no', false],
    ['YES', true],
    ['0', false],
    ['1', true],
    ['false', false],
    ['true', true],
  ] as const)
    t.equal(loadConfig([], { ALBEF_UI: word }).ui, ui, `ALBEF_UI=${word}`);
  t.equal(
    configRefusal([], { ALBEF_UI: 'maybe' }),
    'ALBEF_UI must be true or false (or 1/0, yes/no, on/off) (got "maybe")',
  );
});
