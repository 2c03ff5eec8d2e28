//! The app shell: header with navigation and the connection indicator, and the routed page.

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};

use crate::connection::{LinkStatus, Relay};
use crate::pages;

/// The pages of the app, addressed by the URL fragment (`#/drift`), so every page can be
/// linked to and reloaded without server-side routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The overview of the labs.
    Home,
    /// The collaborative editor: the headline (text CRDT over causal multicast).
    Editor,
    /// The Lamport clock lab (the lab notebook's experiments).
    Lamport,
    /// Space-time diagrams of a trace (Mermaid and our SVG view).
    Trace,
    /// The clock drift lab.
    Drift,
}

impl Route {
    /// Every route, in navigation order.
    pub const ALL: &'static [Route] = &[
        Route::Home,
        Route::Editor,
        Route::Drift,
        Route::Lamport,
        Route::Trace,
    ];

    /// The route for a URL fragment such as `#/drift`; unknown fragments go home.
    pub fn from_hash(hash: &str) -> Route {
        let path = hash.trim_start_matches('#').trim_start_matches('/');
        let path = path.split('?').next().unwrap_or("");
        Route::ALL
            .iter()
            .copied()
            .find(|r| r.slug() == path)
            .unwrap_or(Route::Home)
    }

    /// The fragment path of this route (without `#/`).
    pub fn slug(self) -> &'static str {
        match self {
            Route::Home => "",
            Route::Editor => "editor",
            Route::Lamport => "lamport",
            Route::Trace => "trace",
            Route::Drift => "drift",
        }
    }

    /// The navigation label.
    pub fn label(self) -> &'static str {
        match self {
            Route::Home => "Overview",
            Route::Editor => "Collaborative editor",
            Route::Lamport => "Lamport lab",
            Route::Trace => "Space-time",
            Route::Drift => "Drift lab",
        }
    }
}

fn current_hash() -> String {
    window().location().hash().unwrap_or_default()
}

/// The room this tab joins: `?room=NAME` in the page URL, or `lobby`.
pub fn room_from_url() -> String {
    let search = window().location().search().unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("room="))
        .filter(|r| chronoscope::protocol::valid_room_name(r))
        .unwrap_or("lobby")
        .to_owned()
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let route = RwSignal::new(Route::from_hash(&current_hash()));
    let on_hash = Closure::<dyn Fn()>::new(move || route.set(Route::from_hash(&current_hash())));
    window().set_onhashchange(Some(on_hash.as_ref().unchecked_ref()));
    on_hash.forget();

    let relay = Relay::connect(&room_from_url());
    provide_context(relay);
    provide_context(pages::editor::EditorState::attach(relay));

    view! {
        <header class="topbar">
            <a class="brand" href="#/">"Chronoscope"</a>
            <nav>
                {Route::ALL
                    .iter()
                    .map(|&r| {
                        view! {
                            <a
                                href=format!("#/{}", r.slug())
                                class:active=move || route.get() == r
                                class:headline=r == Route::Editor
                            >
                                {r.label()}
                            </a>
                        }
                    })
                    .collect_view()}
            </nav>
            <ConnectionIndicator relay=relay />
        </header>
        <main>
            {move || match route.get() {
                Route::Home => pages::home::Home().into_any(),
                Route::Editor => pages::editor::Editor().into_any(),
                Route::Lamport => pages::lamport::LamportLab().into_any(),
                Route::Trace => pages::trace::TraceView().into_any(),
                Route::Drift => pages::drift::Drift().into_any(),
            }}
        </main>
    }
}

/// "connected / reconnecting / offline", as y-websocket users know it.
#[component]
fn ConnectionIndicator(relay: Relay) -> impl IntoView {
    let status = relay.status;
    let text = move || match status.get() {
        LinkStatus::Connecting => "connecting…".to_owned(),
        LinkStatus::Connected => match relay.replica.get() {
            Some(id) => format!("connected · replica {id} · room {}", relay.room()),
            None => "connected".to_owned(),
        },
        LinkStatus::Reconnecting {
            attempt,
            retry_in_ms,
        } => {
            format!(
                "reconnecting (attempt {attempt}, in {:.1} s)",
                retry_in_ms as f64 / 1000.0
            )
        }
        LinkStatus::Offline => "offline".to_owned(),
    };
    view! {
        <span class="conn" data-status=move || status.get().key() title="WebSocket to the relay">
            <span class="dot"></span>
            {text}
        </span>
    }
}
