//! What both bundles read from the URL, and the one hand-over between pages: the page path
//! in the fragment (`#/lamport?exp=4` → `lamport`), the relay room in the query
//! (`?room=NAME`), and a trace left for the space-time view.
//!
//! The shell and the labs bundle are separate wasm instances with separate memories (see
//! [`crate`]): they share nothing but the page, so what one page hands another goes through the
//! URL or `localStorage`, never through a Rust value.

use chronoscope::trace::{shiviz, Trace};
use leptos::prelude::*;

/// The fragment of the page URL, `#/lamport?exp=4`.
pub fn current_hash() -> String {
    window().location().hash().unwrap_or_default()
}

/// The page path of the URL as a signal that follows `hashchange` (through a listener, so the
/// shell's router and the labs bundle's each have their own). Only the path: a lab's own
/// parameter changes keep its page mounted.
pub fn watch_slug() -> Memo<String> {
    let hash = RwSignal::new(current_hash());
    let _ = window_event_listener_untyped("hashchange", move |_| hash.set(current_hash()));
    Memo::new(move |_| slug_of(&hash.get()))
}

/// The path of a fragment such as `#/lamport?exp=4`.
pub fn slug_of(hash: &str) -> String {
    let path = hash.trim_start_matches('#').trim_start_matches('/');
    path.split('?').next().unwrap_or("").to_owned()
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

/// The element the shell keeps for the labs bundle's pages.
pub const LAB_ROOT_ID: &str = "lab-root";

/// Where pages leave a trace (ShiViz text) for the space-time view.
pub const TRACE_STORAGE_KEY: &str = "chronoscope.trace";

/// Hands `trace` to the space-time view: stores its ShiViz text under [`TRACE_STORAGE_KEY`]
/// and navigates to `#/trace`. Every page that runs something opens its trace this way.
pub fn open_in_trace_view(trace: &Trace) {
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(TRACE_STORAGE_KEY, &shiviz::export(trace));
        let _ = window().location().set_hash("#/trace");
    }
}
