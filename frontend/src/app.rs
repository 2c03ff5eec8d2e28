//! The app shell: header with navigation and the connection indicator, and the routed page.
//! The pages and the navigation come from the lab registry ([`crate::registry`]); a page of
//! the labs bundle is shown in `#lab-root`, which the labs bundle fills once the shell has
//! loaded it (see [`crate`]).

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::connection::{LinkStatus, Relay};
use crate::pages;
use crate::registry::{self, Group, LabEntry, Page, LABS};
use crate::route::{room_from_url, watch_slug};

/// The labs bundle's ES module, beside the shell's files (trunk names a worker-type binary
/// after itself, without a hash).
const LABS_MODULE: &str = "chronoscope-labs.js";

#[wasm_bindgen(inline_js = "export function import_labs(file) {
    return import(new URL(file, document.baseURI).href).then((m) => m.default());
}")]
extern "C" {
    /// Imports the labs bundle and runs its `init` (which mounts its router).
    #[wasm_bindgen(catch)]
    fn import_labs(file: &str) -> Result<js_sys::Promise, JsValue>;
}

/// Where the labs bundle is.
#[derive(Debug, Clone, PartialEq)]
enum LabsBundle {
    NotLoaded,
    Loading,
    Ready,
    Failed(String),
}

/// Loads the labs bundle (once); `state` follows it.
fn load_labs(state: RwSignal<LabsBundle>) {
    if state.get_untracked() != LabsBundle::NotLoaded {
        return;
    }
    state.set(LabsBundle::Loading);
    let failed = |e: JsValue| {
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| e.as_string())
            .unwrap_or_else(|| format!("{e:?}"));
        LabsBundle::Failed(why)
    };
    match import_labs(LABS_MODULE) {
        Ok(promise) => leptos::task::spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(_) => state.set(LabsBundle::Ready),
                Err(e) => state.set(failed(e)),
            }
        }),
        Err(e) => state.set(failed(e)),
    }
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let slug = watch_slug();
    let in_labs = Memo::new(move |_| {
        matches!(
            registry::find(&slug.get()).map(|e| &e.page),
            Some(Page::Labs)
        )
    });
    let labs = RwSignal::new(LabsBundle::NotLoaded);
    Effect::new(move |_| {
        if in_labs.get() {
            load_labs(labs);
        }
    });

    let relay = Relay::connect(&room_from_url());
    provide_context(relay);
    provide_context(pages::editor::EditorState::attach(relay));

    view! {
        <a class="skip-link" href="#main" on:click=|ev| {
            ev.prevent_default();
            if let Some(m) = document().get_element_by_id("main") {
                let _ = m.unchecked_ref::<web_sys::HtmlElement>().focus();
            }
        }>"Skip to the page"</a>
        <header class="topbar">
            <a class="brand" href="#/">"Chronoscope"</a>
            <Navigation slug=slug />
            <ConnectionIndicator relay=relay />
        </header>
        <main id="main" tabindex="-1">
            {move || match registry::find(&slug.get()).map(|e| &e.page) {
                Some(Page::Here(page)) => page(),
                Some(_) => ().into_any(),
                None => pages::home::Home().into_any(),
            }}
            {move || {
                if !in_labs.get() {
                    return ().into_any();
                }
                match labs.get() {
                    LabsBundle::Ready => ().into_any(),
                    LabsBundle::Failed(why) => view! {
                        <p class="lab-loading error" role="alert">
                            "The labs could not be loaded (" {why} "). Reload the page to try again."
                        </p>
                    }
                    .into_any(),
                    _ => view! {
                        <p class="lab-loading" role="status">"Loading the labs…"</p>
                    }
                    .into_any(),
                }
            }}
            // The labs bundle's own router lives here (and renders nothing off its pages).
            <div id=crate::route::LAB_ROOT_ID hidden=move || !in_labs.get()></div>
        </main>
    }
}

/// The top navigation: the overview, then one menu per group of the registry.
#[component]
fn Navigation(slug: Memo<String>) -> impl IntoView {
    view! {
        <nav aria-label="Labs">
            <a href="#/" class:active=move || slug.get().is_empty()
                aria-current=move || slug.get().is_empty().then_some("page")>"Overview"</a>
            {Group::ALL
                .into_iter()
                .filter_map(|g| {
                    let entries: Vec<&'static LabEntry> =
                        LABS.iter().filter(|e| e.group == g).collect();
                    if entries.is_empty() {
                        return None;
                    }
                    let slugs: Vec<&'static str> = entries.iter().map(|e| e.slug).collect();
                    let active = move || slugs.contains(&slug.get().as_str());
                    Some(view! {
                        <details
                            class="nav-group"
                            class:active=active
                            on:toggle=|ev| close_other_menus(&ev)
                            on:keydown=|ev| {
                                if ev.key() == "Escape" {
                                    close_menu_of(&ev, true);
                                }
                            }
                        >
                            <summary>{g.label()}</summary>
                            <ul>
                                {entries
                                    .into_iter()
                                    .map(|e| {
                                        let here = move || slug.get() == e.slug;
                                        view! {
                                            <li>
                                                <a
                                                    href=format!("#/{}", e.slug)
                                                    class:active=here
                                                    aria-current=move || here().then_some("page")
                                                    on:click=|ev| close_menu(&ev)
                                                >
                                                    {e.label}
                                                </a>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        </details>
                    })
                })
                .collect_view()}
        </nav>
    }
}

/// The menu (`details`) an event happened in.
fn menu_of(ev: &web_sys::Event) -> Option<web_sys::Element> {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|el| el.closest("details.nav-group").ok().flatten())
}

/// Closes the menu a link was chosen from.
fn close_menu(ev: &leptos::ev::MouseEvent) {
    close_menu_of(ev, false);
}

/// Closes the menu an event happened in; with `refocus`, the focus goes back to its heading
/// (Escape in a menu, as in any menu button).
fn close_menu_of(ev: &web_sys::Event, refocus: bool) {
    let Some(d) = menu_of(ev) else { return };
    if d.has_attribute("open") {
        let _ = d.remove_attribute("open");
        if refocus {
            if let Ok(Some(summary)) = d.query_selector("summary") {
                let _ = summary.unchecked_ref::<web_sys::HtmlElement>().focus();
            }
        }
    }
}

/// One menu open at a time: opening one closes the others.
fn close_other_menus(ev: &web_sys::Event) {
    let Some(this) = menu_of(ev) else { return };
    if !this.has_attribute("open") {
        return;
    }
    let _ = this.set_attribute("data-keep", "");
    while let Ok(Some(other)) =
        document().query_selector("details.nav-group[open]:not([data-keep])")
    {
        let _ = other.remove_attribute("open");
    }
    let _ = this.remove_attribute("data-keep");
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
