//! A chart on a page: the SVG drawn by `chronoscope::labs::chart`, its text alternative (the
//! numbers it plots, as a table shown on request) and its SVG download.

use chronoscope::labs::chart::LineChart;
use leptos::prelude::*;

use super::download::{file_name, save};
use super::{DataTable, Run};

/// One chart with its numbers and its download.
#[component]
pub fn Chart(
    /// The run (for the download's file name).
    run: Run,
    /// The chart, recomputed as the run moves.
    #[prop(into)]
    chart: Signal<LineChart>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let name = move || chart.with(|c| c.name.clone());
    let summary = move || {
        chart.with(|c| {
            let lines: Vec<String> = c
                .series
                .iter()
                .map(|s| match s.points.last() {
                    Some((x, y)) => format!("{} ends at {y:.3} (x = {x:.1})", s.name),
                    None => format!("{}: no points yet", s.name),
                })
                .collect();
            format!("{}: {}", c.title, lines.join("; "))
        })
    };
    view! {
        <figure class="chart-figure card" data-chart=name>
            <div class="chart-svg" role="img" aria-label=summary inner_html=move || chart.with(LineChart::svg)></div>
            <figcaption>
                <details on:toggle=move |ev| {
                    use wasm_bindgen::JsCast;
                    let open_now = ev
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::HtmlDetailsElement>().ok())
                        .is_some_and(|d| d.open());
                    open.set(open_now);
                }>
                    <summary>"The numbers"</summary>
                    <Show when=move || open.get()>
                        <DataTable table=Signal::derive(move || chart.with(LineChart::table)) nodes=false />
                    </Show>
                </details>
                <button
                    class="download"
                    data-download=move || format!("{}.svg", name())
                    on:click=move |_| {
                        let svg = chart.with_untracked(LineChart::svg);
                        save(&file_name(&run, &name(), "svg"), "image/svg+xml", &svg);
                    }
                >
                    "SVG"
                </button>
            </figcaption>
        </figure>
    }
}
