// Preloaded with `--import` into a child process: every FileHandle.write first waits
// ALBEF_TEST_SLOW_WRITE_MS (default 5 ms), a slow disk behind a fast network, so that a download's
// reader lags behind the socket as it does on a real slow disk (test/process/connection-close.test.ts).
import { open } from 'node:fs/promises';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { URL } from 'node:url';

const handle = await open(new URL(import.meta.url));
const proto = Object.getPrototypeOf(handle);
await handle.close();
const write = proto.write;
const ms = Number(process.env.ALBEF_TEST_SLOW_WRITE_MS ?? 5);
proto.write = async function slowWrite(...args) {
  await sleep(ms);
  return write.apply(this, args);
};
