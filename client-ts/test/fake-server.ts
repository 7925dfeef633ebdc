/**
 * A scripted stand-in for a Sluice server in tests: a `ws` WebSocketServer on 127.0.0.1 (a
 * free port) that greets each connection with an IdentityToken (a new identity, or the one
 * its `?token=` names) unless told not to, records what it was asked (path, token, subprotocol) and hands each
 * client message to the test, which answers by hand.
 */

import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export type Message = Record<string, unknown> & { type: string };

/** One client connection as the test sees it. */
export class FakeConnection {
  readonly url: URL;
  readonly protocol: string;
  readonly #socket: WebSocket;
  readonly #inbox: Message[] = [];
  #waiting: ((m: Message) => void) | undefined;
  closed: Promise<void>;

  constructor(socket: WebSocket, url: URL) {
    this.#socket = socket;
    this.url = url;
    this.protocol = socket.protocol;
    socket.on("message", (data) => {
      const m = JSON.parse(String(data)) as Message;
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = undefined;
        w(m);
      } else {
        this.#inbox.push(m);
      }
    });
    this.closed = once(socket, "close").then(() => undefined);
  }

  /** The next message the client sent, of the given type. */
  async next(type: string): Promise<Message> {
    const m = this.#inbox.shift() ?? (await new Promise<Message>((resolve) => (this.#waiting = resolve)));
    if (m.type !== type) throw new Error(`expected ${type} from the client, got ${JSON.stringify(m)}`);
    return m;
  }

  /** Messages the client sent that no `next` has taken. */
  get unread(): Message[] {
    return [...this.#inbox];
  }

  /** Sends a message as JSON text; a string as is; bytes as a binary frame. */
  send(message: unknown): void {
    this.#socket.send(typeof message === "string" || message instanceof Uint8Array ? message : JSON.stringify(message));
  }

  /** Closes the connection from the server's side. */
  close(code = 1001, reason = "going away"): void {
    this.#socket.close(code, reason);
  }
}

export class FakeServer {
  readonly #server: WebSocketServer;
  readonly #connections: FakeConnection[] = [];
  #waiting: ((c: FakeConnection) => void)[] = [];
  /** Connections accepted so far. */
  count = 0;

  private constructor(server: WebSocketServer, greet: boolean) {
    this.#server = server;
    server.on("connection", (socket, request) => {
      const url = new URL(request.url ?? "/", "ws://fake");
      this.count++;
      const token = url.searchParams.get("token") ?? `${String(this.count).padStart(64, "0")}.signed`;
      if (greet) socket.send(JSON.stringify({ type: "IdentityToken", identity: token.split(".")[0], token }));
      const connection = new FakeConnection(socket, url);
      const w = this.#waiting.shift();
      if (w) w(connection);
      else this.#connections.push(connection);
    });
  }

  /** `greet: false` makes a server that never sends the IdentityToken. */
  static async start({ greet = true } = {}): Promise<FakeServer> {
    const server = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (protocols) => (protocols.has("sluice.json.v1") ? "sluice.json.v1" : false),
    });
    await once(server, "listening");
    return new FakeServer(server, greet);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The next connection a client opens (or has opened and no test has taken). */
  connection(): Promise<FakeConnection> {
    const c = this.#connections.shift();
    return c ? Promise.resolve(c) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  async stop(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
