/**
 * `HttpClient`: the HTTP API of docs/PROTOCOL.md through `fetch` — identities, databases,
 * schemas, reducer calls and SQL — as one identity (its token) or anonymously. A refusal
 * rejects with the server's reason and status.
 */

import { SluiceError } from "./errors.js";

export class HttpClient {
  readonly #url: string;
  readonly #token: string | undefined;

  /** `url` is the server's base, e.g. "http://127.0.0.1:3000". */
  constructor(url: string, token?: string) {
    this.#url = url.replace(/\/+$/, "");
    this.#token = token;
  }

  /** A new identity and its token. */
  identity(): Promise<{ identity: string; token: string }> {
    return this.#send("POST", "/v1/identity", "") as Promise<{ identity: string; token: string }>;
  }

  /** Every database: its name and owner (null for the server's own demo). */
  databases(): Promise<{ name: string; owner: string | null }[]> {
    return this.#send("GET", "/v1/database") as Promise<{ name: string; owner: string | null }[]>;
  }

  /** The database's module description as the server sends it (tables, reducers, owner). */
  schema(database: string): Promise<any> {
    return this.#send("GET", `/v1/database/${encodeURIComponent(database)}/schema`);
  }

  /** Calls a reducer; resolves with its transaction's offset once durable. */
  async call(database: string, reducer: string, args: unknown = []): Promise<{ offset: number }> {
    const path = `/v1/database/${encodeURIComponent(database)}/call/${encodeURIComponent(reducer)}`;
    const answer = (await this.#send("POST", path, JSON.stringify(args))) as { offset?: unknown } | null;
    if (typeof answer?.offset !== "number") {
      throw new SluiceError(`protocol error: a call answered ${JSON.stringify(answer)}`, { kind: "protocol" });
    }
    return { offset: answer.offset };
  }

  /**
   * Runs SQL: a query's `{columns, rows, offset}`, or for the owner's INSERT, UPDATE and DELETE
   * `{changed, offset}` — the server's JSON as is.
   */
  sql(database: string, sql: string): Promise<any> {
    return this.#send("POST", `/v1/database/${encodeURIComponent(database)}/sql`, sql);
  }

  /** Sends a request; a non-2xx answer rejects with the server's `{"error"}` or its body. */
  async #send(method: string, path: string, body?: string): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (this.#token !== undefined) headers.Authorization = `Bearer ${this.#token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = body;
    let response: Response;
    try {
      response = await fetch(`${this.#url}${path}`, init);
    } catch (e) {
      throw new SluiceError(`cannot reach ${this.#url}: ${(e as Error).message}`, { kind: "connection", cause: e });
    }
    const text = await response.text();
    if (!response.ok) {
      let reason = text;
      try {
        const error = (JSON.parse(text) as { error?: unknown } | null)?.error;
        if (typeof error === "string") reason = error;
      } catch {
        // Not JSON: the body is the reason.
      }
      throw new SluiceError(`${reason} (HTTP ${response.status})`, { kind: "http", status: response.status });
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new SluiceError(`protocol error: ${method} ${path} answered non-JSON: ${text.slice(0, 200)}`, { kind: "protocol" });
    }
  }
}
