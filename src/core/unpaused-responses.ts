// An undici interceptor that keeps a response's HTTP/1 parser from sitting paused when the server's
// FIN arrives. undici 7, the last line that runs on Node 20, crashes the process with an uncatchable
// `assert(!this.paused)` when a server closes the connection (`Connection: close`, then FIN) while
// the parser is paused under the body's backpressure (nodejs/undici#5360; fixed by #5474 in undici
// 8.6, which needs Node 22). No undici option turns the pause off, hence this.
//
// The parser may pause safely where more of the body is still to come: a Content-Length body before
// its last byte, or a chunked one (its end marker follows), since the bytes still unread keep the
// socket from ending. It must not pause on the last bytes of a Content-Length body, nor on a body that
// ends at the FIN (no length): there the FIN comes next. So a pause is passed on only where it is safe,
// and only once the reader lags by `maxBacklogBytes`: until then, and where it is not safe, what the
// reader has not taken yet waits in the body's buffer instead of in the socket.

import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

type Headers = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

const header = (headers: Headers, name: string): string => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
};

class UnpausedHandler implements Dispatcher.DispatchHandler {
  /** body bytes still to come (Content-Length), or how the body ends */
  private remaining: number | 'chunked' | 'at-fin' = 'at-fin';
  /** bytes delivered since the reader last asked for more */
  private backlog = 0;

  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly maxBacklogBytes: number,
  ) {}

  /** The controller the reader sees: its pause() reaches the parser only where that is safe. */
  private controller(c: Dispatcher.DispatchController): Dispatcher.DispatchController {
    const mayPause = (): boolean =>
      this.backlog > this.maxBacklogBytes &&
      (this.remaining === 'chunked' || (typeof this.remaining === 'number' && this.remaining > 0));
    return {
      get aborted() {
        return c.aborted;
      },
      get paused() {
        return c.paused;
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
      pause: () => {
        if (mayPause()) c.pause();
      },
      resume: () => {
        this.backlog = 0;
        c.resume();
      },
    };
  }

  onRequestStart(c: Dispatcher.DispatchController, context: unknown): void {
    this.inner.onRequestStart?.(this.controller(c), context);
  }

  onRequestUpgrade(c: Dispatcher.DispatchController, status: number, headers: Headers, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(this.controller(c), status, headers, socket);
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: Headers, message?: string): void {
    const length = Number(header(headers, 'content-length') || Number.NaN);
    this.remaining = /chunked/i.test(header(headers, 'transfer-encoding'))
      ? 'chunked'
      : Number.isSafeInteger(length)
        ? length
        : 'at-fin';
    this.backlog = 0;
    this.inner.onResponseStart?.(this.controller(c), status, headers, message);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (typeof this.remaining === 'number') this.remaining -= chunk.length;
    this.backlog += chunk.length;
    this.inner.onResponseData?.(this.controller(c), chunk);
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: Headers): void {
    this.inner.onResponseEnd?.(this.controller(c), trailers);
  }

  onResponseError(c: Dispatcher.DispatchController, error: Error): void {
    this.inner.onResponseError?.(this.controller(c), error);
  }
}

/**
 * For `agent.compose(unpausedResponses())`: a reader that lags by more than `maxBacklogBytes` (64 MiB
 * unless said) pauses the connection where that is safe; otherwise the lag waits in memory.
 */
export const unpausedResponses =
  ({ maxBacklogBytes = 64 << 20 }: { maxBacklogBytes?: number } = {}): Dispatcher.DispatcherComposeInterceptor =>
  (dispatch) =>
  (options, handler) =>
    dispatch(options, new UnpausedHandler(handler, maxBacklogBytes));
