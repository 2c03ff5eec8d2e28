//! The tab's WebSocket to the relay, with reconnection and an observable status.
//!
//! Reconnection follows y-websocket's habit: exponential backoff (0.5 s doubling to at most
//! 10 s, with jitter so many tabs do not reconnect in lockstep), and no attempts while the
//! browser reports itself offline — the `online` event triggers an immediate retry.

use std::{cell::RefCell, rc::Rc, time::Duration};

use chronoscope::protocol::{ClientFrame, ServerFrame};
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

struct Inner {
    url: String,
    room: String,
    ws: Option<WebSocket>,
    failures: u32,
    handlers: Vec<Handler>,
}

/// A handle to the tab's relay connection. `Copy`, so components capture it freely.
#[derive(Clone, Copy)]
pub struct Relay {
    inner: StoredValue<Rc<RefCell<Inner>>, LocalStorage>,
    /// The link's status, for the indicator.
    pub status: RwSignal<LinkStatus>,
    /// The replica id the relay gave this tab (None until welcomed).
    pub replica: RwSignal<Option<u32>>,
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
        let inner = Rc::new(RefCell::new(Inner {
            url: format!("{scheme}://{host}/ws/{room}"),
            room: room.to_owned(),
            ws: None,
            failures: 0,
            handlers: Vec::new(),
        }));
        let relay = Relay {
            inner: StoredValue::new_local(inner),
            status: RwSignal::new(LinkStatus::Connecting),
            replica: RwSignal::new(None),
        };
        let on_online = Closure::<dyn Fn()>::new(move || {
            if relay.status.get_untracked() == LinkStatus::Offline {
                relay.open();
            }
        });
        window().set_ononline(Some(on_online.as_ref().unchecked_ref()));
        on_online.forget();
        relay.open();
        relay
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
            let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
                leptos::logging::warn!("relay sent an unreadable frame: {text}");
                return;
            };
            if let ServerFrame::Welcome { replica, .. } = &frame {
                self.replica.set(Some(*replica));
                self.status.set(LinkStatus::Connected);
                self.inner.with_value(|i| i.borrow_mut().failures = 0);
            }
            let handlers = self.inner.with_value(|i| i.borrow().handlers.clone());
            for h in handlers {
                h(&frame);
            }
        });
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        onmessage.forget();
        let onclose = Closure::<dyn Fn()>::new(move || {
            self.replica.set(None);
            self.inner.with_value(|i| i.borrow_mut().ws = None);
            self.schedule_retry();
        });
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        onclose.forget();
        self.inner.with_value(|i| i.borrow_mut().ws = Some(ws));
    }

    fn schedule_retry(self) {
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
