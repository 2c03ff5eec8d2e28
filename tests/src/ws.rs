//! A real WebSocket client of the relay (tokio-tungstenite), speaking
//! [`chronoscope::protocol`], for the relay tests and the relay benchmark.

use std::time::Duration;

use chronoscope::{
    protocol::{ClientFrame, Link, Member, ServerFrame},
    NodeId,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async_with_config, tungstenite::Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long [`Client::next`] waits for a frame before failing the test.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

/// What the relay said in answer to a hello.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// The replica id.
    pub replica: NodeId,
    /// The resume token.
    pub token: String,
    /// Whether the resume token was honoured.
    pub resumed: bool,
    /// The members present after the join (this tab included).
    pub members: Vec<Member>,
    /// The room's delay matrix at the join.
    pub matrix: Vec<Link>,
    /// The catch-up: every stored op of the room, as `ServerFrame::Op`s in log order.
    pub ops: Vec<ServerFrame>,
}

/// One connection to the relay.
pub struct Client {
    ws: Ws,
}

impl Client {
    /// Connect to `url` (`ws://host:port/ws/room`).
    pub async fn connect(url: &str) -> Client {
        // No Nagle, as a browser's WebSocket: each frame leaves at once.
        let (ws, _) = connect_async_with_config(url, None, true)
            .await
            .expect("websocket connects");
        Client { ws }
    }

    /// Connect and say hello; returns the client and what the relay answered.
    pub async fn join(url: &str, name: &str, resume: Option<&str>) -> (Client, Welcome) {
        let mut c = Client::connect(url).await;
        let w = c.hello(name, resume).await;
        (c, w)
    }

    /// Send a frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).expect("client frames serialize");
        self.send_raw(&text).await;
    }

    /// Send a text frame as is.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send on an open socket");
    }

    /// Send an op with this sequence number and payload.
    pub async fn op(&mut self, seq: u64, payload: serde_json::Value) {
        self.send(&ClientFrame::Op {
            seq,
            payload: payload.into(),
            from: None,
        })
        .await;
    }

    /// Say hello and read the welcome, presence, matrix and catch-up.
    pub async fn hello(&mut self, name: &str, resume: Option<&str>) -> Welcome {
        self.send(&ClientFrame::Hello {
            name: name.into(),
            colour: "#3366cc".into(),
            resume: resume.map(str::to_owned),
        })
        .await;
        let (replica, token, resumed) = match self.next().await {
            ServerFrame::Welcome {
                replica,
                token,
                resumed,
                ..
            } => (replica, token, resumed),
            f => panic!("expected welcome, got {f:?}"),
        };
        let members = match self.next().await {
            ServerFrame::Presence { members } => members,
            f => panic!("expected presence, got {f:?}"),
        };
        let matrix = match self.next().await {
            ServerFrame::Matrix { links } => links,
            f => panic!("expected matrix, got {f:?}"),
        };
        let mut ops = Vec::new();
        loop {
            match self.next().await {
                ServerFrame::CaughtUp { ops: n } => {
                    assert_eq!(n, ops.len() as u64, "caught_up counts the catch-up");
                    break;
                }
                f @ ServerFrame::Op { .. } => ops.push(f),
                f => panic!("unexpected frame during catch-up: {f:?}"),
            }
        }
        Welcome {
            replica,
            token,
            resumed,
            members,
            matrix,
            ops,
        }
    }

    /// The next frame; fails the test after [`FRAME_WAIT`].
    pub async fn next(&mut self) -> ServerFrame {
        self.next_within(FRAME_WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame within {FRAME_WAIT:?}"))
    }

    /// The next frame, or `None` if none comes within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<ServerFrame> {
        // One deadline for the whole wait: control frames (the relay's keepalive pings) do not
        // restart it.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(msg) => msg.expect("stream open").expect("no protocol error"),
            };
            if let Message::Text(t) = msg {
                return Some(ServerFrame::from_json(t.as_str()).expect("a server frame"));
            }
        }
    }

    /// Skip frames until one matches `pred`, and return it.
    pub async fn until(&mut self, pred: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        loop {
            let f = self.next().await;
            if pred(&f) {
                return f;
            }
        }
    }

    /// Skip frames until the ack of `seq`; returns `(index, duplicate)`.
    pub async fn ack(&mut self, seq: u64) -> (u64, bool) {
        match self
            .until(|f| matches!(f, ServerFrame::Ack { seq: s, .. } if *s == seq))
            .await
        {
            ServerFrame::Ack {
                index, duplicate, ..
            } => (index, duplicate),
            _ => unreachable!(),
        }
    }

    /// Skip frames until the next op; returns it as `(from, seq, payload)`.
    pub async fn next_op(&mut self) -> (NodeId, u64, serde_json::Value) {
        match self.until(|f| matches!(f, ServerFrame::Op { .. })).await {
            ServerFrame::Op {
                from, seq, payload, ..
            } => (from, seq, payload.to_value()),
            _ => unreachable!(),
        }
    }

    /// Set a link of the room's delay matrix.
    pub async fn set_link(
        &mut self,
        from: NodeId,
        to: NodeId,
        delay_ms: u32,
        jitter_ms: u32,
        cut: bool,
    ) {
        self.send(&ClientFrame::SetLink(Link {
            from,
            to,
            delay_ms,
            jitter_ms,
            cut,
        }))
        .await;
    }

    /// Skip frames until a matrix broadcast; returns its links.
    pub async fn matrix(&mut self) -> Vec<Link> {
        match self
            .until(|f| matches!(f, ServerFrame::Matrix { .. }))
            .await
        {
            ServerFrame::Matrix { links } => links,
            _ => unreachable!(),
        }
    }

    /// The underlying socket, for readers that want raw frames.
    pub fn into_inner(self) -> Ws {
        self.ws
    }

    /// Close the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
