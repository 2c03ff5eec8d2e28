//! The relay over real WebSockets: a real server on `127.0.0.1:0`, real tungstenite clients.

use std::time::Duration;

use chronoscope::protocol::ServerFrame;
use chronoscope_e2e::{Scratch, TestServer};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server on a throwaway front end (an index.html of our own), for tests of the relay alone.
async fn server() -> (TestServer, Scratch) {
    let dist = Scratch::new("dist");
    std::fs::write(dist.0.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    let data = Scratch::new("data");
    let s = TestServer::start(dist.0.clone(), data.0.clone(), Some(data)).await;
    (s, dist)
}

const HELLO: &str = r##"{"type":"hello","name":"t","colour":"#123456"}"##;

async fn next_frame(ws: &mut Ws) -> ServerFrame {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("stream open")
            .expect("no protocol error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("a server frame");
        }
    }
}

#[tokio::test]
async fn each_connection_is_welcomed_with_its_own_replica_id() {
    let (s, _d) = server().await;
    let (mut a, _) = connect_async(s.ws_url("/ws/room-1")).await.unwrap();
    let (mut b, _) = connect_async(s.ws_url("/ws/room-1")).await.unwrap();
    a.send(Message::Text(HELLO.into())).await.unwrap();
    b.send(Message::Text(HELLO.into())).await.unwrap();
    let ra = match next_frame(&mut a).await {
        ServerFrame::Welcome { replica, room, .. } => {
            assert_eq!(room, "room-1");
            replica
        }
        f => panic!("expected welcome, got {f:?}"),
    };
    let rb = match next_frame(&mut b).await {
        ServerFrame::Welcome { replica, .. } => replica,
        f => panic!("expected welcome, got {f:?}"),
    };
    assert_ne!(ra, rb);
    s.stop().await;
}

#[tokio::test]
async fn ping_gets_the_four_timestamps_back() {
    let (s, _d) = server().await;
    let (mut ws, _) = connect_async(s.ws_url("/ws/lobby")).await.unwrap();
    // A clock probe needs no hello.
    ws.send(Message::Text(r#"{"type":"ping","t1":12.5}"#.into()))
        .await
        .unwrap();
    match next_frame(&mut ws).await {
        ServerFrame::Pong { t1, t2, t3 } => {
            assert_eq!(t1, 12.5);
            assert!(t2 > 1.0e12, "t2 is Unix ms: {t2}");
            assert!(t3 >= t2);
        }
        f => panic!("expected pong, got {f:?}"),
    }
    s.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_keeps_working() {
    let (s, _d) = server().await;
    let (mut ws, _) = connect_async(s.ws_url("/ws/lobby")).await.unwrap();
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        ServerFrame::Error { .. }
    ));
    ws.send(Message::Text(r#"{"type":"warp_drive"}"#.into()))
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        ServerFrame::Error { .. }
    ));
    ws.send(Message::Text(r#"{"type":"ping","t1":1}"#.into()))
        .await
        .unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        ServerFrame::Pong { .. }
    ));
    s.stop().await;
}

#[tokio::test]
async fn unknown_paths_under_ws_are_404() {
    let (s, _d) = server().await;
    for path in ["/ws", "/ws/a/b", "/ws/bad%20name"] {
        let err = connect_async(s.ws_url(path)).await.expect_err(path);
        match err {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                assert_eq!(resp.status().as_u16(), 404, "{path}")
            }
            e => panic!("{path}: expected HTTP 404, got {e}"),
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_sockets() {
    let (s, _d) = server().await;
    let (mut ws, _) = connect_async(s.ws_url("/ws/lobby")).await.unwrap();
    ws.send(Message::Text(HELLO.into())).await.unwrap();
    assert!(matches!(
        next_frame(&mut ws).await,
        ServerFrame::Welcome { .. }
    ));
    s.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "socket still open 5 s after shutdown");
}

/// The response head of a plain HTTP GET, lower-cased.
async fn http_head(s: &TestServer, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tcp.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp).to_lowercase();
    text.split("\r\n\r\n").next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn static_files_are_revalidated_so_an_unhashed_labs_bundle_is_never_stale() {
    let (s, d) = server().await;
    std::fs::write(
        d.0.join("chronoscope-labs.js"),
        "export default async () => {};",
    )
    .unwrap();
    for path in ["/", "/index.html", "/chronoscope-labs.js", "/no/such/page"] {
        let head = http_head(&s, path).await;
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            head.contains("\r\ncache-control: no-cache"),
            "{path}: {head}"
        );
    }
    let js = http_head(&s, "/chronoscope-labs.js").await;
    assert!(js.contains("content-type: text/javascript"), "{js}");
    s.stop().await;
}
