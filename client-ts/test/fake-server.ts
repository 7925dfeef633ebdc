/**
 * A scripted stand-in for a Sluice server in tests: a `ws` WebSocketServer on 127.0.0.1 (a
 * free port) that greets each connection with an IdentityToken (a new identity, or the one
 * its `?token=` names) unless told not to, records what it was asked (path, token, subprotocol) and hands each
 * client message to the test, which answers by hand. Its handshakes can be refused with an
 * HTTP status (`refuse`), and its plain HTTP requests (the client's check after a failed
 * handshake) are recorded and answered by `http`.
 */

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

/** A plain HTTP request the fake was sent. */
export interface HttpRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

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
  readonly #http: Server;
  readonly #server: WebSocketServer;
  readonly #connections: FakeConnection[] = [];
  #waiting: ((c: FakeConnection) => void)[] = [];
  /** Connections accepted so far. */
  count = 0;
  /** Handshakes refused so far (see `refuse`). */
  refused = 0;
  /** While set, every handshake is refused with this HTTP status. */
  refuse: number | undefined;
  /** Plain HTTP requests, in order, and how they are answered (a status and a body). */
  readonly requests: HttpRequest[] = [];
  http: (request: HttpRequest) => [number, string] = () => [200, '{"columns":[{"name":"1","type":"INTEGER"}],"rows":[[1]],"offset":0}'];

  private constructor(http: Server, server: WebSocketServer, greet: boolean) {
    this.#http = http;
    this.#server = server;
    http.on("request", (req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += String(chunk)));
      req.on("end", () => {
        const request = { method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, body };
        this.requests.push(request);
        const [status, text] = this.http(request);
        res.writeHead(status, { "content-type": "application/json" }).end(text);
      });
    });
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
    const http = createServer();
    let fake: FakeServer | undefined;
    const server = new WebSocketServer({
      server: http,
      handleProtocols: (protocols) => (protocols.has("sluice.json.v1") ? "sluice.json.v1" : false),
      verifyClient: (_info, done) => {
        if (fake?.refuse === undefined) return done(true);
        fake.refused++;
        done(false, fake.refuse, "refused by the test");
      },
    });
    http.listen(0, "127.0.0.1");
    await once(http, "listening");
    fake = new FakeServer(http, server, greet);
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
  }

  /** The next connection a client opens (or has opened and no test has taken). */
  connection(): Promise<FakeConnection> {
    const c = this.#connections.shift();
    return c ? Promise.resolve(c) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  async stop(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}
