//! The tab's WebSocket to the relay, with reconnection and an observable status.
//!
//! Reconnection follows y-websocket's habit: exponential backoff (0.5 s doubling to at most
//! 10 s, with jitter so many tabs do not reconnect in lockstep), and no attempts while the
//! browser reports itself offline — the `online` event triggers an immediate retry.
//!
//! Handshake (see `chronoscope::protocol`): on every open the tab sends `hello` with its
//! display name and colour and, if it has one, the resume token of its last `welcome`, kept in
//! `sessionStorage` per room — so a reconnect or a reload of the same tab gets its replica id
//! back and its unacknowledged ops keep their ids. Re-sending those ops is the editor's job:
//! it registers [`Relay::on_connected`], which fires after each catch-up.

use std::{cell::RefCell, rc::Rc, time::Duration};

use chronoscope::protocol::{ClientFrame, Link, Member, ServerFrame};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{MessageEvent, WebSocket};

/// First retry delay.
const BACKOFF_START_MS: f64 = 500.0;
/// Longest retry delay.
const BACKOFF_MAX_MS: f64 = 10_000.0;

/// The state of the link to the relay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkStatus {
    /// The first connection attempt is under way.
    Connecting,
    /// The socket is open and the relay has welcomed us.
    Connected,
    /// The socket closed; another attempt follows after a backoff.
    Reconnecting {
        /// How many attempts failed in a row.
        attempt: u32,
        /// Delay before the next attempt.
        retry_in_ms: u32,
    },
    /// The browser is offline; we wait for it to come back.
    Offline,
}

impl LinkStatus {
    /// A stable machine-readable name (used as `data-status` in the DOM).
    pub fn key(self) -> &'static str {
        match self {
            LinkStatus::Connecting => "connecting",
            LinkStatus::Connected => "connected",
            LinkStatus::Reconnecting { .. } => "reconnecting",
            LinkStatus::Offline => "offline",
        }
    }
}

type Handler = Rc<dyn Fn(&ServerFrame)>;
type ConnectedHandler = Rc<dyn Fn(Connected)>;

/// What [`Relay::on_connected`] handlers learn once a (re)connection has caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected {
    /// This tab's replica id.
    pub replica: u32,
    /// Whether the relay gave back the replica id of the previous connection; if not, ops
    /// not yet acknowledged were sent under another id.
    pub resumed: bool,
    /// How many stored ops the catch-up carried (already passed to `on_frame` handlers).
    pub ops: u64,
}

struct Inner {
    url: String,
    room: String,
    name: String,
    colour: String,
    ws: Option<WebSocket>,
    failures: u32,
    handlers: Vec<Handler>,
    connected: Vec<ConnectedHandler>,
    /// The last welcome's replica id and whether it was resumed, until its catch-up ends.
    welcomed: Option<(u32, bool)>,
    /// Closed for good ([`Relay::close`]): no reconnection.
    closed: bool,
    /// The `online` listener, removed on close.
    online: Option<WindowListenerHandle>,
}

fn session_get(key: &str) -> Option<String> {
    window()
        .session_storage()
        .ok()
        .flatten()?
        .get_item(key)
        .ok()
        .flatten()
}

fn session_set(key: &str, value: &str) {
    if let Some(s) = window().session_storage().ok().flatten() {
        let _ = s.set_item(key, value);
    }
}

fn token_key(room: &str) -> String {
    format!("chronoscope-token-{room}")
}

/// This tab's display name and colour: kept in `sessionStorage`, made up on first use.
fn identity() -> (String, String) {
    const COLOURS: [&str; 8] = [
        "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#800000",
    ];
    let name = session_get("chronoscope-name").unwrap_or_else(|| {
        let n = format!("tab-{:04}", (js_sys::Math::random() * 10_000.0) as u32);
        session_set("chronoscope-name", &n);
        n
    });
    let colour = session_get("chronoscope-colour").unwrap_or_else(|| {
        let c = COLOURS[(js_sys::Math::random() * COLOURS.len() as f64) as usize % COLOURS.len()];
        session_set("chronoscope-colour", c);
        c.to_owned()
    });
    (name, colour)
}

/// A handle to the tab's relay connection. `Copy`, so components capture it freely.
#[derive(Clone, Copy)]
pub struct Relay {
    inner: StoredValue<Rc<RefCell<Inner>>, LocalStorage>,
    /// The link's status, for the indicator.
    pub status: RwSignal<LinkStatus>,
    /// The replica id the relay gave this tab (None until welcomed).
    pub replica: RwSignal<Option<u32>>,
    /// Who is in the room (from `presence`, `joined`, `left`).
    pub members: RwSignal<Vec<Member>>,
    /// The room's delay matrix: the links that differ from the default.
    pub matrix: RwSignal<Vec<Link>>,
}

impl Relay {
    /// Open the link to `/ws/{room}` on the page's own host and keep it open.
    pub fn connect(room: &str) -> Relay {
        let location = window().location();
        let scheme = if location.protocol().unwrap_or_default() == "https:" {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().unwrap_or_default();
        let (name, colour) = identity();
        let inner = Rc::new(RefCell::new(Inner {
            url: format!("{scheme}://{host}/ws/{room}"),
            room: room.to_owned(),
            name,
            colour,
            ws: None,
            failures: 0,
            handlers: Vec::new(),
            connected: Vec::new(),
            welcomed: None,
            closed: false,
            online: None,
        }));
        let relay = Relay {
            inner: StoredValue::new_local(inner),
            status: RwSignal::new(LinkStatus::Connecting),
            replica: RwSignal::new(None),
            members: RwSignal::new(Vec::new()),
            matrix: RwSignal::new(Vec::new()),
        };
        // A listener, not `window.ononline`: a lab's own relay must not replace the shell's.
        let online = window_event_listener_untyped("online", move |_| {
            if relay.status.get_untracked() == LinkStatus::Offline {
                relay.open();
            }
        });
        relay
            .inner
            .with_value(|i| i.borrow_mut().online = Some(online));
        relay.open();
        relay
    }

    /// Closes the link for good: the socket, the retries and the `online` listener (a lab's
    /// own room, when its page goes away).
    #[allow(dead_code)] // used by `frame::lab_room`
    pub fn close(&self) {
        let Some(inner) = self.inner.try_get_value() else {
            return;
        };
        let mut i = inner.borrow_mut();
        i.closed = true;
        if let Some(ws) = i.ws.take() {
            ws.set_onclose(None);
            ws.set_onmessage(None);
            ws.set_onopen(None);
            let _ = ws.close();
        }
        if let Some(h) = i.online.take() {
            h.remove();
        }
    }

    fn closed(&self) -> bool {
        self.inner
            .try_with_value(|i| i.borrow().closed)
            .unwrap_or(true)
    }

    /// The room this tab is in.
    pub fn room(&self) -> String {
        self.inner.with_value(|i| i.borrow().room.clone())
    }

    /// Call `handler` for every frame the relay sends from now on.
    #[allow(dead_code)] // used by the lab pages as they subscribe
    pub fn on_frame(&self, handler: impl Fn(&ServerFrame) + 'static) {
        self.inner
            .with_value(|i| i.borrow_mut().handlers.push(Rc::new(handler)));
    }

    /// Call `handler` each time a connection has been welcomed and has caught up with the
    /// room's stored ops: the moment for the editor to re-send its unacknowledged ops.
    #[allow(dead_code)] // used by the editor page
    pub fn on_connected(&self, handler: impl Fn(Connected) + 'static) {
        self.inner
            .with_value(|i| i.borrow_mut().connected.push(Rc::new(handler)));
    }

    /// Change one directed link of the room's delay matrix (every tab sees the change).
    #[allow(dead_code)] // used by the editor page's latency matrix
    pub fn set_link(&self, link: Link) -> bool {
        self.send(&ClientFrame::SetLink(link))
    }

    /// Send a frame if the link is up; returns whether it was handed to the socket.
    #[allow(dead_code)] // used by the lab pages as they send
    pub fn send(&self, frame: &ClientFrame) -> bool {
        let text = serde_json::to_string(frame).expect("client frames serialize");
        self.inner.with_value(|i| match &i.borrow().ws {
            Some(ws) if ws.ready_state() == WebSocket::OPEN => ws.send_with_str(&text).is_ok(),
            _ => false,
        })
    }

    fn open(self) {
        if self.closed() {
            return;
        }
        if !window().navigator().on_line() {
            self.status.set(LinkStatus::Offline);
            return;
        }
        let url = self.inner.with_value(|i| i.borrow().url.clone());
        let ws = match WebSocket::new(&url) {
            Ok(ws) => ws,
            Err(_) => {
                self.schedule_retry();
                return;
            }
        };
        let onmessage = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            let Ok(frame) = ServerFrame::from_json(&text) else {
                leptos::logging::warn!("relay sent an unreadable frame: {text}");
                return;
            };
            self.observe(&frame);
            let handlers = self.inner.with_value(|i| i.borrow().handlers.clone());
            for h in handlers {
                h(&frame);
            }
            if let ServerFrame::CaughtUp { ops } = frame {
                let welcomed = self.inner.with_value(|i| i.borrow_mut().welcomed.take());
                if let Some((replica, resumed)) = welcomed {
                    let handlers = self.inner.with_value(|i| i.borrow().connected.clone());
                    for h in handlers {
                        h(Connected {
                            replica,
                            resumed,
                            ops,
                        });
                    }
                }
            }
        });
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        onmessage.forget();
        let onopen = Closure::<dyn Fn()>::new(move || {
            let (room, name, colour) = self.inner.with_value(|i| {
                let i = i.borrow();
                (i.room.clone(), i.name.clone(), i.colour.clone())
            });
            self.send(&ClientFrame::Hello {
                name,
                colour,
                resume: session_get(&token_key(&room)),
            });
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        onopen.forget();
        let onclose = Closure::<dyn Fn()>::new(move || {
            self.replica.set(None);
            self.inner.with_value(|i| i.borrow_mut().ws = None);
            self.schedule_retry();
        });
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        onclose.forget();
        self.inner.with_value(|i| i.borrow_mut().ws = Some(ws));
    }

    /// Keep the relay-level state (identity, presence, matrix) in step with the frames.
    fn observe(self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Welcome {
                replica,
                token,
                resumed,
                ..
            } => {
                session_set(&token_key(&self.room()), token);
                self.replica.set(Some(*replica));
                self.status.set(LinkStatus::Connected);
                self.inner.with_value(|i| {
                    let mut i = i.borrow_mut();
                    i.failures = 0;
                    i.welcomed = Some((*replica, *resumed));
                });
            }
            ServerFrame::Presence { members } => self.members.set(members.clone()),
            ServerFrame::Joined { member } => self.members.update(|ms| {
                ms.retain(|m| m.replica != member.replica);
                ms.push(member.clone());
                ms.sort_by_key(|m| m.replica);
            }),
            ServerFrame::Left { replica } => self
                .members
                .update(|ms| ms.retain(|m| m.replica != *replica)),
            ServerFrame::Matrix { links } => self.matrix.set(links.clone()),
            ServerFrame::Error { message } => {
                leptos::logging::warn!("relay refused a frame: {message}")
            }
            _ => {}
        }
    }

    fn schedule_retry(self) {
        if self.closed() {
            return;
        }
        if !window().navigator().on_line() {
            self.status.set(LinkStatus::Offline);
            return;
        }
        let attempt = self.inner.with_value(|i| {
            let mut i = i.borrow_mut();
            i.failures += 1;
            i.failures
        });
        let base = (BACKOFF_START_MS * 2f64.powi(attempt as i32 - 1)).min(BACKOFF_MAX_MS);
        let delay = base * (0.75 + 0.5 * js_sys::Math::random());
        self.status.set(LinkStatus::Reconnecting {
            attempt,
            retry_in_ms: delay as u32,
        });
        set_timeout(move || self.open(), Duration::from_millis(delay as u64));
    }
}
