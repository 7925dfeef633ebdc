/** The one error type of the client: what went wrong, of which kind, for which request. */

/**
 * - `refused`: the server refused a request (bad SQL, unknown reducer, not allowed, …), or
 *   the connection itself: the token (`status` 401) or the database, which it has not (404);
 * - `reducer`: the reducer ran and failed, its transaction rolled back;
 * - `connection`: the connection is not open, or was lost before the answer came;
 * - `protocol`: the server sent something this client cannot read or that breaks the
 *   protocol's rules (the connection is dropped, and re-established where reconnecting);
 * - `http`: an HTTP request failed (see `status`);
 * - `callback`: an application's callback threw (the error is its `cause`).
 */
export type ErrorKind = "refused" | "reducer" | "connection" | "protocol" | "http" | "callback";

export class SluiceError extends Error {
  readonly kind: ErrorKind;
  /** The request this error answers, when it answers one. */
  readonly requestId?: number;
  /** The HTTP status, for an HTTP error the server answered or a connection it refused. */
  readonly status?: number;

  constructor(
    message: string,
    details: { kind: ErrorKind; requestId?: number | undefined; status?: number | undefined; cause?: unknown },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "SluiceError";
    this.kind = details.kind;
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.status !== undefined) this.status = details.status;
  }
}
