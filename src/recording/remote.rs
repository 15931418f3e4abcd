//! Recording from a running tickwire over WebSocket (`record --connect`):
//! a real client that subscribes with snapshots and reads `lagged` notices.

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{EventFeed, Next, RecorderError, Settings, Summary};
use crate::protocol::pb::{
    ClientMessage, ServerMessage, Subscribe, client_message, server_message,
};

fn decode(frame: &[u8]) -> Result<ServerMessage, RecorderError> {
    let bytes = if frame.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(frame), &mut out)
            .map_err(|e| RecorderError::Decode(format!("gzip: {e}")))?;
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(frame)
    };
    ServerMessage::decode(&bytes[..]).map_err(|e| RecorderError::Decode(e.to_string()))
}

/// A subscription to a server's channels.
struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    channels: Vec<String>,
}

impl EventFeed for Connection {
    async fn next(&mut self) -> Result<Next, RecorderError> {
        let frame = match self.ws.next().await {
            None => return Ok(Next::Ended("the server closed the connection".into())),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "connection to the server lost; finishing the file");
                return Ok(Next::Ended(format!("connection lost: {e}")));
            }
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(c))) => {
                return Ok(Next::Ended(match c {
                    Some(c) => format!("the server closed with {} {}", c.code, c.reason),
                    None => "the server closed".to_string(),
                }));
            }
            Some(Ok(_)) => return Ok(Next::Nothing),
        };
        Ok(match decode(&frame)?.kind {
            Some(server_message::Kind::Event(event)) => Next::Event(event),
            Some(server_message::Kind::Error(e)) => return Err(RecorderError::Server(e.message)),
            Some(server_message::Kind::Subscribed(s)) if s.channels.is_empty() => {
                tracing::warn!(
                    "no channel matches {} yet; waiting for channels created later \
                     (GET /channels lists what the server has)",
                    self.channels.join(",")
                );
                Next::Nothing
            }
            Some(server_message::Kind::Lagged(l)) => {
                tracing::warn!(channel = %l.channel, first = l.first_seq, last = l.last_seq, "recorder fell behind; the server skipped events");
                Next::Lagged(l.last_seq.saturating_sub(l.first_seq) + 1)
            }
            _ => Next::Nothing,
        })
    }

    async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Records from the server at `url` until `shutdown`, the duration or the
/// event count; the server going away ends the recording (the file is
/// complete up to there).
pub async fn record(
    settings: &Settings,
    url: &str,
    shutdown: CancellationToken,
) -> Result<Summary, RecorderError> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|source| RecorderError::Connect {
            url: url.to_string(),
            source,
        })?;
    let subscribe = ClientMessage {
        kind: Some(client_message::Kind::Subscribe(Subscribe {
            request_id: 1,
            channels: settings.channels.clone(),
            resume: Default::default(),
            snapshot: Some(true),
            conflate_ms: 0,
        })),
    };
    ws.send(Message::binary(subscribe.encode_to_vec())).await?;
    let feed = Connection {
        ws,
        channels: settings.channels.clone(),
    };
    super::run(settings, url, feed, shutdown).await
}
