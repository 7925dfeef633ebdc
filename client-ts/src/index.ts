/**
 * sluice-client: the TypeScript client of Sluice, for browsers and Node. `SluiceClient` holds
 * a WebSocket connection to one database (subscriptions as exact local caches with callbacks,
 * reducer calls, one-off queries, reconnect); `HttpClient` speaks the HTTP API.
 */

export { SluiceClient, type ConnectOptions, type Status, type WebSocketConstructor } from "./connection.js";
export { Subscription, type TransactionInfo, type RowListener, type UpdateListener, type ChangeListener } from "./subscription.js";
export { HttpClient } from "./http.js";
export { SluiceError, type ErrorKind } from "./errors.js";
export { JSON_PROTOCOL, type Value, type Row, type Column } from "./protocol.js";
