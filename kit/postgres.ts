// A real PostgreSQL (PGlite: PostgreSQL in WebAssembly, with pgvector) served over TCP on 127.0.0.1,
// so tests reach it through the project's own `pg` client as they would a server. Test-only.

import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** Stops listening (clients see the server go away); the database is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops and closes the database. */
  close(): Promise<void>;
}

/**
 * Starts PGlite with pgvector on a free port. The socket server multiplexes its clients onto PGlite's
 * single session; `maxConnections` is how many client connections it accepts at once.
 */
export async function startPostgres(
  options: { maxConnections?: number; dataDir?: string } = {},
): Promise<TestPostgres> {
  const db = await PGlite.create({ ...(options.dataDir ? { dataDir: options.dataDir } : {}), extensions: { vector } });
  const maxConnections = options.maxConnections ?? 32;
  let server: PGLiteSocketServer | undefined = new PGLiteSocketServer({
    db,
    port: 0,
    host: '127.0.0.1',
    maxConnections,
  });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    await s?.stop();
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    async start() {
      if (server) return;
      server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections });
      await server.start();
    },
    async close() {
      await stop();
      await db.close();
    },
  };
}
