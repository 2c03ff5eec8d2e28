//! The overview page: what Chronoscope is and which labs exist.

use leptos::prelude::*;

/// The overview page.
#[component]
pub fn Home() -> impl IntoView {
    view! {
        <section class="page home">
            <h1>"A laboratory for time in distributed systems"</h1>
            <p>
                "Clocks drift, messages overtake each other, and \"before\" stops meaning what it "
                "means on one machine. Chronoscope lets you watch it happen: every lab runs the "
                "real algorithms (compiled from the same Rust crate the relay and the CLI use) "
                "and shows their state as it changes."
            </p>
            <p class="headline-link">
                <a href="#/editor">"Open the collaborative editor →"</a>
                " several tabs co-edit one document through the relay; drag a link's latency "
                "and watch each tab's hold-back queue fill and drain."
            </p>
            <p class="hint">
                "Open this page in several tabs: each tab is a replica connected to the relay, "
                "and the indicator at the top right shows its link."
            </p>
        </section>
    }
}
