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
            <ul class="labs">
                <li>
                    <a href="#/drift">"Drift lab"</a>
                    " — quartz clocks that run fast or slow, and Cristian, Berkeley, NTP with "
                    "Marzullo, or fault-tolerant averaging pulling them back; HLC and TrueTime on "
                    "top; your tab's own offset to the relay's clock."
                </li>
                <li>
                    <a href="#/lamport">"Lamport lab"</a>
                    " — the lab notebook's machines ticking at 1–6 Hz: queues, clock jumps, and "
                    "why a slow machine falls behind."
                </li>
                <li>
                    <a href="#/trace">"Space-time diagrams"</a>
                    " — any run as a Mermaid sequence diagram or happens-before graph, beside our "
                    "own view with slanted message arrows; ShiViz logs in and out."
                </li>
            </ul>
            <p class="hint">
                "Open this page in several tabs: each tab is a replica connected to the relay, "
                "and the indicator at the top right shows its link."
            </p>
        </section>
    }
}
