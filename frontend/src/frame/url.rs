//! A lab's state in the URL fragment: `#/lamport?exp=4&seed=7`.
//!
//! The fragment (not the query) carries it, so the relay's `?room=` stays where it is and the
//! server needs no routes. A change the user makes is pushed (a new history entry, so the back
//! button returns to the run before it); the canonical form a lab gives its parameters replaces
//! the entry in place (no entry for tidying a hand-written link).

use chronoscope::labs::Params;
use leptos::prelude::*;

use crate::route::{current_hash, slug_of};

/// The path of the fragment: `lamport` for `#/lamport?exp=4`.
pub fn slug_in_url() -> String {
    slug_of(&current_hash())
}

/// The parameters in the fragment's query.
pub fn params_in_url() -> Params {
    let h = current_hash();
    Params::parse(h.split_once('?').map_or("", |(_, q)| q))
}

/// The fragment for a lab's parameters.
pub fn fragment(slug: &str, params: &Params) -> String {
    if params.is_empty() {
        format!("#/{slug}")
    } else {
        format!("#/{slug}?{}", params.to_query())
    }
}

/// A new history entry for these parameters (unless the URL already says so).
pub fn push(slug: &str, params: &Params) {
    let f = fragment(slug, params);
    if current_hash() != f {
        let _ = window().location().set_hash(&f);
    }
}

/// The current history entry, rewritten to these parameters (no new entry, no event).
pub fn replace(slug: &str, params: &Params) {
    let f = fragment(slug, params);
    if current_hash() == f {
        return;
    }
    let loc = window().location();
    let url = format!(
        "{}{}",
        loc.pathname().unwrap_or_default(),
        loc.search().unwrap_or_default()
    ) + &f;
    if let Ok(h) = window().history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}
