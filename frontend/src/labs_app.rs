//! The labs bundle's root: a router over the registry's lab pages, mounted into the shell's
//! `#lab-root`. It follows the URL fragment itself (the shell hides `#lab-root` on its own
//! pages, and this router renders nothing there, so a lab's page — its timers, its relay room —
//! goes away when the user leaves it).

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::registry::{self, Page};
use crate::route::{watch_slug, LAB_ROOT_ID};

/// Mounts the lab router into `#lab-root` (once; the shell imports this bundle once).
pub fn mount() {
    let Some(root) = document().get_element_by_id(LAB_ROOT_ID) else {
        web_sys::console::error_1(&"chronoscope-labs: no #lab-root on the page".into());
        return;
    };
    leptos::mount::mount_to(root.unchecked_into(), LabsApp).forget();
}

/// The router of the labs bundle.
#[component]
fn LabsApp() -> impl IntoView {
    let slug = watch_slug();
    move || match registry::find(&slug.get()).map(|e| &e.page) {
        Some(Page::Here(page)) => page(),
        _ => ().into_any(),
    }
}
