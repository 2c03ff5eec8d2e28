//! The collaborative editor: a text area bound to this tab's [`EditorSession`] (the text CRDT
//! behind causal multicast), with the replica's clock, hold-back queue, delivered log and
//! unacknowledged ops beside it, the room's latency matrix and the presence list.
//!
//! The session lives as long as the app (not the page): the tab stays a replica of the room's
//! document while another page is shown, and the page binds the DOM to it when it mounts.

use std::{cell::RefCell, rc::Rc, time::Duration};

use chronoscope::editor::{diff_utf16, EditorError, EditorSession, TRACE_CAP};
use chronoscope::protocol::{ClientFrame, Link, Payload, ServerFrame};
use chronoscope::replication::text::{map_caret_utf16, Patch};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlTextAreaElement;

use crate::components::LatencyGrid;
use crate::connection::{Connected, Relay};
use crate::route::open_in_trace_view;

/// How long typing may run on before its batch goes out as one causal message, ms.
const BATCH_MS: u64 = 150;
/// How often the panel's "waited for" times tick, ms.
const TICK_MS: u64 = 200;
/// Delivered-log lines shown.
const LOG_LINES: usize = 40;

fn now_ms() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// Where a tab keeps its unacknowledged messages across a reload (per room, per tab).
fn unacked_key(room: &str) -> String {
    format!("chronoscope-unacked-{room}")
}

/// The unacknowledged messages a tab stored before a reload: `(replica, [(seq, payload)])`.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredUnacked {
    replica: u32,
    messages: Vec<(u64, Payload)>,
}

/// The tab's editor replica and its binding to the relay; `Copy`, provided as context by the
/// app shell.
#[derive(Clone, Copy)]
pub struct EditorState {
    relay: Relay,
    /// The replica, once the relay has welcomed the tab.
    session: StoredValue<Rc<RefCell<Option<EditorSession>>>, LocalStorage>,
    /// The mounted text area, if the editor page is shown.
    area: StoredValue<Option<HtmlTextAreaElement>, LocalStorage>,
    /// The text the text area showed when we last looked: `input` diffs against it.
    shown: StoredValue<String>,
    /// Bumped on every change of the session, so the panel re-renders.
    version: RwSignal<u64>,
    /// Caught up with the relay on the current connection: our ops may go out.
    live: RwSignal<bool>,
    /// A batch flush is scheduled.
    flush_due: StoredValue<bool>,
    /// What went wrong, newest last (refused frames, lost ops).
    problems: RwSignal<Vec<String>>,
}

impl EditorState {
    /// Create the tab's editor replica and subscribe it to the relay.
    pub fn attach(relay: Relay) -> EditorState {
        let state = EditorState {
            relay,
            session: StoredValue::new_local(Rc::new(RefCell::new(None))),
            area: StoredValue::new_local(None),
            shown: StoredValue::new(String::new()),
            version: RwSignal::new(0),
            live: RwSignal::new(false),
            flush_due: StoredValue::new(false),
            problems: RwSignal::new(Vec::new()),
        };
        relay.on_frame(move |f| state.on_frame(f));
        relay.on_connected(move |c| state.on_connected(c));
        // A reload or a closed tab: the open batch (up to BATCH_MS of typing) becomes an
        // unacknowledged message in sessionStorage instead of being lost. For the app's lifetime.
        let _ = window_event_listener(leptos::ev::pagehide, move |_| state.flush());
        state
    }

    fn with_session<R>(&self, f: impl FnOnce(&mut EditorSession) -> R) -> Option<R> {
        let cell = self.session.get_value();
        let mut s = cell.borrow_mut();
        s.as_mut().map(f)
    }

    fn problem(&self, p: String) {
        leptos::logging::warn!("editor: {p}");
        self.problems.update(|ps| {
            ps.push(p);
            let n = ps.len();
            if n > 8 {
                ps.drain(..n - 8);
            }
        });
    }

    fn bump(&self) {
        self.version.update(|v| *v += 1);
    }

    fn on_frame(self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Welcome { replica, .. } => {
                self.live.set(false);
                let cell = self.session.get_value();
                let mut s = cell.borrow_mut();
                if s.as_ref().is_some_and(|s| s.replica() == *replica) {
                    return; // a resumed connection: the catch-up's ops are duplicates
                }
                if let Some(old) = s.as_ref() {
                    let lost = old.unacked().len() + usize::from(old.batch_len() > 0);
                    if lost > 0 {
                        self.problem(format!(
                            "the relay gave this tab a new replica id ({} → {replica}); {lost} \
                             unacknowledged message(s) of the old one are lost",
                            old.replica()
                        ));
                    }
                }
                *s = Some(EditorSession::new(*replica));
                drop(s);
                self.show_text(String::new());
                self.bump();
            }
            ServerFrame::Op {
                from, seq, payload, ..
            } => {
                self.take_input();
                let result = self.with_session(|s| s.receive(*from, *seq, payload, now_ms()));
                match result {
                    Some(Ok(patches)) => self.apply_patches(&patches),
                    Some(Err(e)) => {
                        if matches!(e, EditorError::Text(_)) {
                            self.apply_patches(&[]);
                        }
                        self.problem(format!("op {from}#{seq} refused: {e}"));
                    }
                    None => {}
                }
                self.bump();
            }
            ServerFrame::Ack { seq, .. } => {
                self.with_session(|s| s.ack(*seq));
                self.persist();
                self.bump();
            }
            _ => {}
        }
    }

    /// Keep the unacknowledged messages in `sessionStorage`, so a reload before the relay's
    /// ack does not lose them.
    fn persist(self) {
        let Some(stored) = self.with_session(|s| StoredUnacked {
            replica: s.replica(),
            messages: s.resend().into_iter().map(|o| (o.seq, o.payload)).collect(),
        }) else {
            return;
        };
        if let Some(storage) = window().session_storage().ok().flatten() {
            let key = unacked_key(&self.relay.room());
            let _ = if stored.messages.is_empty() {
                storage.remove_item(&key)
            } else {
                storage.set_item(&key, &serde_json::to_string(&stored).unwrap_or_default())
            };
        }
    }

    /// After a reload: our own messages the relay had not acknowledged are not in its log;
    /// take them back (in order, after the catch-up) so they are applied and re-sent.
    fn restore_stored(self) {
        let Some(storage) = window().session_storage().ok().flatten() else {
            return;
        };
        let key = unacked_key(&self.relay.room());
        let Some(stored) = storage
            .get_item(&key)
            .ok()
            .flatten()
            .and_then(|j| serde_json::from_str::<StoredUnacked>(&j).ok())
        else {
            return;
        };
        let me = self.with_session(|s| s.replica());
        if me != Some(stored.replica) {
            self.problem(format!(
                "{} unacknowledged message(s) of replica {} from before the reload are lost: \
                 the relay gave this tab another replica id",
                stored.messages.len(),
                stored.replica
            ));
            let _ = storage.remove_item(&key);
            return;
        }
        for (seq, payload) in stored.messages {
            let t = now_ms();
            let taken = self.with_session(|s| s.restore_own(seq, &payload, t));
            match taken {
                Some(Ok(patches)) => self.apply_patches(&patches),
                Some(Err(e)) => self.problem(format!("stored message {seq} not restored: {e}")),
                None => {}
            }
        }
    }

    /// A connection has caught up: re-send what the relay has not acknowledged (it
    /// de-duplicates), then the open batch.
    fn on_connected(self, _c: Connected) {
        self.live.set(true);
        self.restore_stored();
        let resend = self.with_session(|s| s.resend()).unwrap_or_default();
        for out in resend {
            self.relay.send(&ClientFrame::Op {
                seq: out.seq,
                payload: out.payload,
                from: None,
            });
        }
        self.flush();
        self.persist();
        self.bump();
    }

    /// Read the text area and turn what changed since we last looked into local ops.
    fn take_input(self) {
        let Some(area) = self.area.get_value() else {
            return;
        };
        let value = area.value();
        let Some((pos, deleted, inserted)) = self.shown.with_value(|old| diff_utf16(old, &value))
        else {
            return;
        };
        match self.with_session(|s| s.edit_utf16(pos, deleted, &inserted)) {
            Some(Ok(())) => {
                self.shown.set_value(value);
                self.schedule_flush();
            }
            Some(Err(e)) => {
                self.problem(format!("local edit refused: {e}"));
                self.apply_patches(&[]);
            }
            None => {
                // Not welcomed yet: the text area is read-only then; put it back.
                self.apply_patches(&[]);
            }
        }
        self.bump();
    }

    fn schedule_flush(self) {
        if self.flush_due.get_value() {
            return;
        }
        self.flush_due.set_value(true);
        set_timeout(move || self.flush(), Duration::from_millis(BATCH_MS));
    }

    /// Close the open batch into one causal message and send it (if offline it stays
    /// unacknowledged and goes out after the next catch-up).
    fn flush(self) {
        self.flush_due.set_value(false);
        if !self.live.get_untracked() {
            return;
        }
        if let Some(Some(out)) = self.with_session(|s| s.flush(now_ms())) {
            self.relay.send(&ClientFrame::Op {
                seq: out.seq,
                payload: out.payload,
                from: None,
            });
            self.persist();
            self.bump();
        }
    }

    /// Show the session's text, moving the caret and selection through `patches`.
    fn apply_patches(self, patches: &[Patch]) {
        let text = self.with_session(|s| s.text()).unwrap_or_default();
        if let Some(area) = self.area.get_value() {
            let start = area.selection_start().ok().flatten().unwrap_or(0) as usize;
            let end = area.selection_end().ok().flatten().unwrap_or(0) as usize;
            if area.value() != text {
                area.set_value(&text);
                let (s, e) = (
                    map_caret_utf16(start, patches),
                    map_caret_utf16(end, patches),
                );
                let _ = area.set_selection_range(s as u32, e as u32);
            }
        }
        self.shown.set_value(text);
    }

    fn show_text(self, text: String) {
        if let Some(area) = self.area.get_value() {
            area.set_value(&text);
        }
        self.shown.set_value(text);
    }
}

/// The editor page.
#[component]
pub fn Editor() -> impl IntoView {
    let state = expect_context::<EditorState>();
    let relay = state.relay;
    let area_ref = NodeRef::<leptos::html::Textarea>::new();
    let now = RwSignal::new(now_ms());

    area_ref.on_load(move |el| {
        let el: HtmlTextAreaElement = el.unchecked_into();
        let text = state.with_session(|s| s.text()).unwrap_or_default();
        el.set_value(&text);
        state.shown.set_value(text);
        state.area.set_value(Some(el));
    });
    on_cleanup(move || state.area.set_value(None));
    if let Ok(handle) =
        set_interval_with_handle(move || now.set(now_ms()), Duration::from_millis(TICK_MS))
    {
        on_cleanup(move || handle.clear());
    }

    let replica = move || relay.replica.get();
    let clock = move || {
        state.version.get();
        state
            .with_session(|s| s.clock().to_string())
            .unwrap_or_else(|| "—".into())
    };

    view! {
        <section class="page editor">
            <h1>"Collaborative editor"</h1>
            <p class="hint">
                "Every tab in this room is a replica of one document: a YATA/FugueMax text CRDT "
                "whose edits travel as causal broadcasts through the relay. Open the page in "
                "more tabs (same "<span class="mono">"?room="</span>"), slow a link down in the "
                "latency matrix, type in several tabs and watch the hold-back queue."
            </p>
            <div class="editor-grid">
                <div class="editor-main">
                    <textarea
                        id="editor-text"
                        node_ref=area_ref
                        spellcheck="false"
                        placeholder="Type here…"
                        prop:readOnly=move || !state.live.get()
                        on:input=move |_| state.take_input()
                    ></textarea>
                    <Problems state=state />
                </div>
                <aside class="editor-panel">
                    <div class="card">
                        <h2>"Replica"</h2>
                        <p>
                            "id "
                            <b id="editor-replica">
                                {move || replica().map_or("—".to_owned(), |r| r.to_string())}
                            </b>
                            " · clock "
                            <span id="editor-clock" class="mono">{clock}</span>
                        </p>
                        <Presence relay=relay />
                        <button
                            class="open-trace"
                            title=format!(
                                "this tab's view of the causal multicast as a space-time diagram (the first {TRACE_CAP} events)"
                            )
                            on:click=move |_| {
                                if let Some(trace) = state.with_session(|s| s.trace().clone()) {
                                    open_in_trace_view(&trace);
                                }
                            }
                        >
                            "Open trace"
                        </button>
                    </div>
                    <HoldBack state=state now=now />
                    <Unacked state=state now=now />
                    <Delivered state=state />
                </aside>
            </div>
            <LatencyMatrix relay=relay />
        </section>
    }
}

#[component]
fn Problems(state: EditorState) -> impl IntoView {
    view! {
        <ul class="editor-problems error">
            {move || {
                state.problems.get().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()
            }}
        </ul>
    }
}

#[component]
fn Presence(relay: Relay) -> impl IntoView {
    view! {
        <ul id="editor-presence" class="presence">
            {move || {
                let me = relay.replica.get();
                relay
                    .members
                    .get()
                    .into_iter()
                    .map(|m| {
                        let you = (Some(m.replica) == me).then_some(" (you)");
                        view! {
                            <li data-replica=m.replica>
                                <span class="swatch" style=format!("background:{}", m.colour)></span>
                                {format!("{} · replica {}", m.name, m.replica)}
                                {you}
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ul>
    }
}

#[component]
fn HoldBack(state: EditorState, now: RwSignal<f64>) -> impl IntoView {
    let held = move || {
        state.version.get();
        state.with_session(|s| s.held()).unwrap_or_default()
    };
    view! {
        <div class="card">
            <h2>"Hold-back queue " <span id="editor-held-count">{move || held().len()}</span></h2>
            <ul id="editor-held" class="mono">
                {move || {
                    let t = now.get();
                    held()
                        .into_iter()
                        .map(|h| {
                            view! {
                                <li class="held-op" data-sender=h.sender>
                                    {format!(
                                        "{}#{} waits for ({}, {}) · {:.1} s · {}",
                                        h.sender,
                                        h.seq,
                                        h.waiting_for.node,
                                        h.waiting_for.seq,
                                        ((t - h.held_since) / 1000.0).max(0.0),
                                        h.ops.join("; "),
                                    )}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

#[component]
fn Unacked(state: EditorState, now: RwSignal<f64>) -> impl IntoView {
    let unacked = move || {
        state.version.get();
        state.with_session(|s| s.unacked()).unwrap_or_default()
    };
    view! {
        <div class="card">
            <h2>"Unacknowledged " <span id="editor-unacked-count">{move || unacked().len()}</span></h2>
            <ul id="editor-unacked" class="mono">
                {move || {
                    let t = now.get();
                    unacked()
                        .into_iter()
                        .map(|u| {
                            view! {
                                <li>
                                    {format!(
                                        "#{} · {:.1} s · {}",
                                        u.seq,
                                        ((t - u.sent_at) / 1000.0).max(0.0),
                                        u.ops.join("; "),
                                    )}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

#[component]
fn Delivered(state: EditorState) -> impl IntoView {
    view! {
        <div class="card">
            <h2>"Delivered log"</h2>
            <ul id="editor-delivered" class="mono">
                {move || {
                    state.version.get();
                    let me = state.with_session(|s| s.replica());
                    state
                        .with_session(|s| {
                            let log = s.delivered_log();
                            let skip = log.len().saturating_sub(LOG_LINES);
                            log[skip..]
                                .iter()
                                .rev()
                                .map(|d| {
                                    let held = d.delivered_at - d.received_at;
                                    let what = if Some(d.id.sender) == me { "sent" } else { "delivered" };
                                    let line = if held > 0.5 {
                                        format!("{}#{} {what}, held {:.0} ms", d.id.sender, d.id.seq, held)
                                    } else {
                                        format!("{}#{} {what}", d.id.sender, d.id.seq)
                                    };
                                    view! { <li>{line}</li> }
                                })
                                .collect_view()
                        })
                        .unwrap_or_default()
                }}
            </ul>
        </div>
    }
}

/// The room's latency matrix as a square grid (sender rows × recipient columns); every change
/// goes to the relay, which broadcasts the new matrix to every tab.
#[component]
fn LatencyMatrix(relay: Relay) -> impl IntoView {
    view! {
        <div class="card latency-matrix">
            <h2>"Latency matrix"</h2>
            <LatencyGrid
                id="editor-matrix"
                members=relay.members
                matrix=relay.matrix
                me=relay.replica
                on_change=move |link: Link| {
                    relay.set_link(link);
                }
            />
            <Show when=move || relay.members.with(|m| m.len() < 2)>
                <p class="hint">"Alone in the room: open this page in another tab to get links."</p>
            </Show>
        </div>
    }
}
