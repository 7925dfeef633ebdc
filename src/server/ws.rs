//! The WebSocket protocol's server side (docs/PROTOCOL.md). A connection names its encoding
//! by subprotocol and proves its identity with a token (`Authorization: Bearer` or
//! `?token=`), or is given a new one; the first frame it gets is its IdentityToken. Its
//! requests go to the database's executor, which answers (and sends every update) through
//! the connection's writer queue. A frame that cannot be read gets an Error naming what was
//! wrong, and the connection stays open.

use super::http::bearer;
use super::{Database, Failure, Shared};
use crate::executor::Request;
use crate::module_db::Caller;
use crate::sessions::{frame_len, ClientId, ClientSink, QueuedBytes};
use crate::wire::frame;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use sluice_client::protocol::{ClientMessage, Encoding, ServerMessage, JSON_PROTOCOL, MSGPACK_PROTOCOL};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, WeakUnboundedSender};
use tokio::sync::oneshot;

#[derive(Deserialize)]
pub(super) struct WsParams {
    token: Option<String>,
}

/// Close code for a client that broke the protocol's rules (too slow, too big).
const POLICY: u16 = 1008;
/// Close code for a database going away.
const GOING_AWAY: u16 = 1001;
/// Frames written before one flush, at most.
const WRITE_BATCH: usize = 256;

/// A connection's read buffer, and the bytes its writer gathers before writing. Requests are
/// small and a batch's frames are flushed together anyway; tungstenite's default of 128 KiB
/// each made every subscriber cost the server ~130 KiB.
const SOCKET_BUFFER_BYTES: usize = 8 * 1024;

pub(super) async fn upgrade(
    State(dbs): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, Failure> {
    let db = dbs.get(&name)?;
    let requested: Vec<String> = ws
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .flat_map(|p| p.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    if !requested.is_empty() && !requested.iter().any(|p| Encoding::from_protocol(p).is_some()) {
        let msg = format!("unsupported subprotocol {requested:?}: use {JSON_PROTOCOL} or {MSGPACK_PROTOCOL}");
        return Err(Failure(StatusCode::BAD_REQUEST, msg));
    }
    let (identity, token) = match (bearer(&dbs, &headers)?, params.token) {
        (Some(identity), _) => (identity, dbs.keys.token(identity)),
        (None, Some(token)) => (dbs.keys.verify(&token).map_err(|e| Failure(StatusCode::UNAUTHORIZED, e))?, token),
        (None, None) => dbs.keys.issue(),
    };
    let caller = db.caller(identity);
    let client = dbs.next_client.fetch_add(1, Ordering::Relaxed);
    let limit = dbs.config.max_message_bytes;
    let ws = ws
        .protocols([JSON_PROTOCOL, MSGPACK_PROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES);
    let encoding = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(Encoding::from_protocol)
        .unwrap_or(Encoding::Json);
    let server_queued = Arc::clone(&dbs.send_queued);
    Ok(ws.on_upgrade(move |socket| serve(socket, db, client, caller, token, encoding, server_queued)))
}

/// Bytes a closed connection must have left queued for its memory to go back to the system.
const RELEASE_AFTER_BYTES: usize = 4 << 20;

/// Serves one connection: reads requests until it closes, while its writer sends what the
/// executor queues; whichever ends first ends the connection.
async fn serve(
    socket: WebSocket,
    db: Database,
    client: ClientId,
    caller: Caller,
    token: String,
    encoding: Encoding,
    server_queued: Arc<AtomicUsize>,
) {
    let (mut sink, stream) = socket.split();
    let hello = ServerMessage::IdentityToken { identity: caller.identity.to_hex(), token };
    if sink.send(frame(encoding, &hello)).await.is_err() {
        return;
    }
    let (sender, outgoing) = unbounded_channel();
    let (abort, aborted) = oneshot::channel();
    let queued = Arc::new(QueuedBytes::new(Arc::clone(&db.executor.metrics().send_queued), server_queued));
    let replies = ClientSink { sender, queued: Arc::clone(&queued), abort: Arc::new(Mutex::new(Some(abort))) };
    let connect = replies.clone();
    if !db.executor.send(Request::Connect { client, caller, encoding, sink: connect }) {
        let _ = sink.send(close(GOING_AWAY, "the database has stopped")).await;
        return;
    }
    // The reader keeps only a weak hold on the queue, so the queue ends when the executor
    // lets go of the connection (the database stopping).
    let weak = Replies { sender: replies.sender.downgrade(), queued, abort: Arc::clone(&replies.abort), encoding };
    drop(replies);
    tokio::select! {
        () = read(stream, &db, client, &weak) => {}
        () = write(sink, outgoing, Arc::clone(&weak.queued), aborted) => {}
    }
    // What the client left queued has just been freed with its queue. A burst of slow
    // clients would otherwise leave the process holding its peak: large amounts go back to
    // the system (glibc keeps freed memory otherwise).
    if weak.queued.get() >= RELEASE_AFTER_BYTES {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases memory the allocator holds free; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
    db.executor.send(Request::Disconnect { client });
}

/// Passes each request to the executor; a frame that cannot be read gets an Error.
async fn read(mut stream: SplitStream<WebSocket>, db: &Database, client: ClientId, replies: &Replies) {
    let encoding = replies.encoding;
    while let Some(read) = stream.next().await {
        let bytes = match read {
            Ok(Message::Text(t)) if encoding == Encoding::Json => t.as_bytes().to_vec(),
            Ok(Message::Binary(b)) if encoding == Encoding::MessagePack => b.to_vec(),
            Ok(Message::Text(_) | Message::Binary(_)) => {
                let kind = if encoding == Encoding::Json { "text" } else { "binary" };
                replies.error(None, format!("this connection speaks {}: send {kind} frames", encoding.protocol()));
                continue;
            }
            Ok(Message::Close(_)) => return,
            Ok(_) => continue,
            Err(e) => {
                replies.close(format!("cannot read the message: {e}"));
                // The writer sends the reason and ends the connection.
                std::future::pending::<()>().await;
                return;
            }
        };
        match encoding.decode::<ClientMessage>(&bytes) {
            Ok(message) => {
                if !db.executor.send(Request::Client { client, message }) {
                    return;
                }
            }
            Err(e) => {
                let request_id =
                    encoding.decode::<serde_json::Value>(&bytes).ok().and_then(|v| v.get("request_id")?.as_u64());
                replies.error(request_id, format!("malformed message: {e}"));
            }
        }
    }
}

/// Sends what the executor queues, in order, until it lets go of the connection or aborts
/// it (then the close reason goes ahead of anything still queued). Frames already waiting are
/// written together and flushed once, so a busy connection costs one write per batch rather
/// than one per frame.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: UnboundedReceiver<Vec<Message>>,
    queued: Arc<QueuedBytes>,
    mut aborted: oneshot::Receiver<String>,
) {
    let reason = loop {
        let first = tokio::select! {
            biased;
            reason = &mut aborted => break reason.unwrap_or_default(),
            m = outgoing.recv() => match m {
                Some(m) => m,
                None => {
                    let _ = sink.send(close(GOING_AWAY, "the database has stopped")).await;
                    return;
                }
            },
        };
        let mut batch = first;
        while batch.len() < WRITE_BATCH {
            match outgoing.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let len: usize = batch.iter().map(frame_len).sum();
        let send = async {
            for m in batch {
                sink.feed(m).await?;
            }
            sink.flush().await
        };
        tokio::select! {
            biased;
            reason = &mut aborted => break reason.unwrap_or_default(),
            sent = send => if sent.is_err() { return },
        }
        queued.sub(len);
    };
    // A client too far behind may not be reading at all: give the close a moment, no more.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(POLICY, &reason))).await;
}

/// A close frame; its reason is cut to the protocol's 123 bytes.
fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: reason[..end].into() }))
}

/// The reader's own replies (errors about frames it could not read), through the writer's
/// queue and counted against its bound like the executor's.
struct Replies {
    sender: WeakUnboundedSender<Vec<Message>>,
    queued: Arc<QueuedBytes>,
    abort: Arc<Mutex<Option<oneshot::Sender<String>>>>,
    encoding: Encoding,
}

impl Replies {
    fn error(&self, request_id: Option<u64>, error: String) {
        if let Some(s) = self.sender.upgrade() {
            let m = frame(self.encoding, &ServerMessage::Error { request_id, error });
            self.queued.add(frame_len(&m));
            let _ = s.send(vec![m]);
        }
    }

    /// Closes the connection with this reason, ahead of anything queued.
    fn close(&self, reason: String) {
        crate::sessions::abort(&self.abort, reason);
    }
}
