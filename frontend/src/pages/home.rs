//! The overview page: every lab of the registry, grouped, each with the question it answers,
//! a small picture and a link. Labs appear here as they are added to the registry.

use leptos::prelude::*;

use crate::registry::{Group, LABS};

/// The overview page.
#[component]
pub fn Home() -> impl IntoView {
    view! {
        <section class="page home">
            <h1>"A laboratory for time in distributed systems"</h1>
            <p class="lead">
                "Clocks drift, messages overtake each other, and \"before\" stops meaning what it "
                "means on one machine. Every lab runs the real algorithms (the same Rust crate the "
                "relay and the command line use), states the textbook result it demonstrates and "
                "checks it against the run's own numbers. Pick a question:"
            </p>
            {Group::ALL
                .into_iter()
                .filter_map(|g| {
                    let entries: Vec<_> = LABS.iter().filter(|e| e.group == g).collect();
                    if entries.is_empty() {
                        return None;
                    }
                    let id = format!("group-{}", g.label().to_lowercase().replace(' ', "-"));
                    let labelled = id.clone();
                    Some(view! {
                        <section class="lab-group" aria-labelledby=labelled>
                            <h2 id=id>{g.label()}</h2>
                            <ul class="lab-cards">
                                {entries
                                    .into_iter()
                                    .map(|e| {
                                        view! {
                                            <li class="lab-card" data-lab=e.slug>
                                                <a href=format!("#/{}", e.slug)>
                                                    <span class="picture" inner_html=e.picture></span>
                                                    <span class="lab-name">{e.label}</span>
                                                    <span class="question">{e.question}</span>
                                                </a>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        </section>
                    })
                })
                .collect_view()}
            <p class="hint">
                "Open a page in several tabs: each tab is a replica connected to the relay (the "
                "indicator at the top right shows its link); "
                <span class="mono">"?room=NAME"</span>
                " picks a room."
            </p>
        </section>
    }
}
