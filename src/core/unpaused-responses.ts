// An undici interceptor that never lets a response pause its connection's HTTP/1 parser. undici 7,
// the last line that runs on Node 20, crashes the process with an uncatchable `assert(!this.paused)`
// when a server closes the connection (`Connection: close`, then FIN) while the parser sits paused
// under the body's backpressure (nodejs/undici#5360; fixed by #5474 in undici 8.6, which needs Node
// 22). No undici option turns the pause off, hence this. The body still reaches its reader in order;
// what the reader has not taken yet waits in the body's buffer instead of in the socket, so use it
// only where the whole body may sit in memory: a response capped in size, or a download whose file
// is read whole right after.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

type Headers = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

/** The controller a handler sees, with pause() a no-op (resume, abort and the rest pass through). */
function unpausable(c: Dispatcher.DispatchController): Dispatcher.DispatchController {
  return {
    get aborted() {
      return c.aborted;
    },
    get paused() {
      return false;
    },
    get reason() {
      return c.reason;
    },
    get rawHeaders() {
      return c.rawHeaders;
    },
    get rawTrailers() {
      return c.rawTrailers;
    },
    abort: (reason) => c.abort(reason),
    pause: () => {},
    resume: () => c.resume(),
  };
}

class UnpausedHandler implements Dispatcher.DispatchHandler {
  constructor(private readonly inner: Dispatcher.DispatchHandler) {}

  onRequestStart(c: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(unpausable(c), context);
  }

  onRequestUpgrade(c: Dispatcher.DispatchController, status: number, headers: Headers, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(unpausable(c), status, headers, socket);
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: Headers, message?: string): void {
    this.inner.onResponseStart?.(unpausable(c), status, headers, message);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.inner.onResponseData?.(unpausable(c), chunk);
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: Headers): void {
    this.inner.onResponseEnd?.(unpausable(c), trailers);
  }

  onResponseError(c: Dispatcher.DispatchController, error: Error): void {
    this.inner.onResponseError?.(unpausable(c), error);
  }
}

/** For `agent.compose(unpausedResponses)`. */
export const unpausedResponses: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) =>
  dispatch(options, new UnpausedHandler(handler));
