/**
 * One POST through an undici pool, read with a dispatch handler: the status, the headers and the
 * first bytes of the body, collected as they arrive. No response stream, no async iterator, no
 * AbortSignal: those cost more CPU per attempt than the request itself (about a tenth of the
 * service's profile in the throughput bench, bench/README.md), and an attempt needs none of them.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Deadline } from './deadline.ts';

/** How a POST ended. `statusCode` is set as soon as the receiver answered, even if the body then failed or stalled. */
export type PostOutcome =
  | { kind: 'response'; statusCode: number; headers: IncomingHttpHeaders; body: Buffer }
  | { kind: 'failed'; statusCode?: number; error: Error }
  | { kind: 'timedOut'; statusCode?: number };

export interface PostRequest {
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** Raised into undici to cut a request short; never reaches a caller. */
class Stop extends Error {}

/**
 * POSTs `request` on `dispatcher` and reads at most `bodyLimit` bytes of the answer: reaching the
 * limit ends the attempt and destroys the connection, so an endless body is never buffered.
 * `deadline` settles the outcome as timed out whatever stage the request is in (waiting for a
 * connection, for headers, in the body), and aborts it there.
 */
export function postRequest(dispatcher: Dispatcher, request: PostRequest, bodyLimit: number, deadline: Deadline): Promise<PostOutcome> {
  return new Promise<PostOutcome>((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let statusCode: number | undefined;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;

    const settle = (outcome: PostOutcome): void => {
      if (settled) return;
      settled = true;
      deadline.onExpiry(undefined);
      resolve(outcome);
    };
    const answered = (): void => settle({ kind: 'response', statusCode: statusCode ?? 0, headers, body: Buffer.concat(chunks, size) });

    deadline.onExpiry(() => {
      settle({ kind: 'timedOut', ...(statusCode !== undefined && { statusCode }) });
      controller?.abort(new Stop('timed out'));
    });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        controller = started;
        // Expired while waiting for a connection: the request must not start late.
        if (settled) started.abort(new Stop('settled before the request started'));
      },
      onResponseStart(_controller, status, responseHeaders) {
        // 1xx informational answers precede the real one.
        if (status < 200) return;
        statusCode = status;
        headers = responseHeaders;
      },
      onResponseData(current, chunk) {
        if (settled) return;
        const room = bodyLimit - size;
        chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        size += Math.min(chunk.length, room);
        if (size < bodyLimit) return;
        answered();
        current.abort(new Stop('body limit reached'));
      },
      onResponseEnd() {
        answered();
      },
      onResponseError(_controller, error) {
        settle({ kind: 'failed', error, ...(statusCode !== undefined && { statusCode }) });
      },
    };
    dispatcher.dispatch({ method: 'POST', path: request.path, headers: request.headers, body: request.body }, handler);
  });
}
