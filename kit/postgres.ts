// A real PostgreSQL (PGlite: PostgreSQL in WebAssembly, with pgvector 0.8.7) served over TCP on
// 127.0.0.1, so tests reach it through the project's own `pg` client as they would a server. Test-only.
//
// PGlite has one session. pglite-socket's own server multiplexes its clients onto it message by
// message, which lets one client's extended-protocol Parse/Bind/Execute interleave with another's
// (the unnamed statement is session state), and concurrent clients then run each other's statements.
// So the session is handed here to one client at a time, from its first message until the backend is
// idle again (a Sync or simple Query answered outside a transaction): what a real server's separate
// backends look like from the outside, one at a time.

import { createServer, type Server, type Socket } from 'node:net';

import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketHandler } from '@electric-sql/pglite-socket';

type QueueLike = ConstructorParameters<typeof PGLiteSocketHandler>[0]['queryQueue'];

interface Pending {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (n: number) => void;
  reject: (err: unknown) => void;
}

const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const TERMINATE = 0x58; // 'X'

/** Gives PGlite's single session to one client at a time, between idle points. */
class SessionQueue {
  private readonly queue: Pending[] = [];
  private owner: number | null = null;
  private running = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.pump();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  clearQueueForHandler(handlerId: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i]!.handlerId === handlerId) this.queue.splice(i, 1)[0]!.reject(new Error('client gone'));
    }
  }

  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.owner = null;
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const index = this.owner === null ? 0 : this.queue.findIndex((p) => p.handlerId === this.owner);
        if (index < 0 || index >= this.queue.length) return;
        const item = this.queue.splice(index, 1)[0]!;
        this.owner = item.handlerId;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (err) {
          item.reject(err);
        }
        const type = item.message[0];
        const startup = type === 0; // the startup packet begins with its length, not a type byte
        if (startup || type === TERMINATE || ((type === SYNC || type === QUERY) && !this.db.isInTransaction())) {
          this.owner = null;
        }
        item.resolve(bytes);
      }
    } finally {
      this.running = false;
    }
  }
}

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** Stops listening and drops every client connection (as a server going down); the data is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops and closes the database. */
  close(): Promise<void>;
}

/** Starts PGlite with pgvector on a free port of 127.0.0.1. */
export async function startPostgres(options: { dataDir?: string } = {}): Promise<TestPostgres> {
  const db = await PGlite.create({ ...(options.dataDir ? { dataDir: options.dataDir } : {}), extensions: { vector } });
  const queue = new SessionQueue(db) as unknown as QueueLike;
  const sockets = new Set<Socket>();
  let server: Server | undefined;

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        const handler = new PGLiteSocketHandler({ queryQueue: queue, closeOnDetach: true });
        handler.attach(socket).catch(() => socket.destroy());
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        const address = s.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });

  const port = await listen(0);
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    async start() {
      if (!server) await listen(port);
    },
    async close() {
      await stop();
      await db.close();
    },
  };
}
