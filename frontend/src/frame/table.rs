//! A run's table as HTML, with each node's colour beside its name, and the colour swatch
//! itself.

use chronoscope::labs::chart::node_colour;
use chronoscope::labs::{Cell, Table};
use leptos::prelude::*;

/// A node's colour as a small square (the name beside it carries the meaning, so the colour
/// is never the only cue).
#[component]
pub fn Swatch(node: usize) -> impl IntoView {
    view! { <span class="swatch" aria-hidden="true" style=format!("background:{}", node_colour(node))></span> }
}

fn text(c: &Cell, column: &str) -> String {
    match c {
        Cell::Int(v) => v.to_string(),
        Cell::Num(v) if column.ends_with("_s") => format!("{v:.3}"),
        Cell::Num(v) if v.abs() >= 1000.0 || *v == v.trunc() => format!("{v:.0}"),
        Cell::Num(v) => format!("{v:.3}"),
        Cell::Text(t) => t.clone(),
        Cell::Empty => "–".to_owned(),
    }
}

/// A [`Table`] as an HTML table; the first column names the node of each row (its colour is
/// the row's index), unless `nodes` is false.
#[component]
pub fn DataTable(
    /// The table (recomputed as the run moves).
    #[prop(into)]
    table: Signal<Table>,
    /// Whether row `i` is node `i` (a swatch in its first cell).
    #[prop(default = true)]
    nodes: bool,
    /// Column headings to show instead of the table's column names.
    #[prop(optional)]
    headings: Option<&'static [&'static str]>,
) -> impl IntoView {
    let name = move || table.with(|t| t.name.clone());
    view! {
        <div class="table-scroll">
            <table class="data" data-table=name>
                <caption class="visually-hidden">{move || table.with(|t| t.title.clone())}</caption>
                <thead>
                    <tr>
                        {move || {
                            table.with(|t| {
                                t.columns
                                    .iter()
                                    .enumerate()
                                    .map(|(i, c)| {
                                        let h = headings.and_then(|h| h.get(i).copied()).map_or_else(|| c.replace('_', " "), str::to_owned);
                                        view! { <th scope="col">{h}</th> }
                                    })
                                    .collect_view()
                            })
                        }}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        table.with(|t| {
                            t.rows
                                .iter()
                                .enumerate()
                                .map(|(r, row)| {
                                    let cells = row
                                        .iter()
                                        .enumerate()
                                        .map(|(i, c)| {
                                            let col = t.columns.get(i).cloned().unwrap_or_default();
                                            let v = text(c, &col);
                                            if i == 0 && nodes {
                                                view! { <th scope="row"><Swatch node=r />{v}</th> }.into_any()
                                            } else {
                                                view! { <td data-col=col>{v}</td> }.into_any()
                                            }
                                        })
                                        .collect_view();
                                    view! { <tr>{cells}</tr> }
                                })
                                .collect_view()
                        })
                    }}
                </tbody>
            </table>
        </div>
    }
}
