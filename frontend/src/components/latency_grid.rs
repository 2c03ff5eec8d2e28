//! A room's delay matrix as a square grid: one row per sender, one column per recipient, and
//! in every off-diagonal cell that directed link's delay (a slider), jitter and cut. A room of
//! n tabs has n·(n−1) links; as a grid they take n rows, so eight tabs still fit one screen.
//!
//! The grid's shape follows the members only: a matrix change from the relay updates the cells
//! in place, so a keyboard user tabbing through the grid keeps their place while other tabs
//! edit it.

use chronoscope::protocol::{Link, Member};
use chronoscope::NodeId;
use leptos::prelude::*;

/// The highest delay and jitter a cell offers, ms.
pub const MAX_MS: u32 = 5000;
/// The slider's step, ms.
const STEP_MS: u32 = 50;

/// The link `from → to` in `matrix`, or the default (no delay, no jitter, not cut).
fn link_in(matrix: &[Link], from: NodeId, to: NodeId) -> Link {
    matrix
        .iter()
        .find(|l| l.from == from && l.to == to)
        .copied()
        .unwrap_or(Link {
            from,
            to,
            delay_ms: 0,
            jitter_ms: 0,
            cut: false,
        })
}

/// What a cell says about its link in one short line: `300 ms ± 50`, `… · cut`.
fn summary(delay_ms: u32, jitter_ms: u32, cut: bool) -> String {
    let mut s = format!("{delay_ms} ms");
    if jitter_ms > 0 {
        s.push_str(&format!(" ± {jitter_ms}"));
    }
    if cut {
        s.push_str(" · cut");
    }
    s
}

/// A member's name in headings: `Ada (3)`, with "you" for this tab.
fn who(m: &Member, me: Option<NodeId>) -> String {
    if Some(m.replica) == me {
        format!("{} ({}, you)", m.name, m.replica)
    } else {
        format!("{} ({})", m.name, m.replica)
    }
}

/// The grid. `on_change` receives a link's whole new setting after every edit of one of its
/// controls (slider let go, jitter entered, cut toggled).
#[component]
pub fn LatencyGrid(
    /// The table's id.
    id: &'static str,
    /// The room's members, in the order of the rows and columns.
    #[prop(into)]
    members: Signal<Vec<Member>>,
    /// The links that differ from the default.
    #[prop(into)]
    matrix: Signal<Vec<Link>>,
    /// This tab's replica, marked "you" in the headings.
    #[prop(into)]
    me: Signal<Option<NodeId>>,
    /// Called with a link's new setting.
    #[prop(into)]
    on_change: Callback<Link>,
) -> impl IntoView {
    // The shape changes only when someone joins or leaves.
    let shape = Memo::new(move |_| members.get());
    let heading = move |m: &Member, scope: &'static str, prefix: &'static str| {
        let label = who(m, me.get_untracked());
        view! {
            <th scope=scope>
                <span class="swatch" aria-hidden="true" style=format!("background:{}", m.colour)></span>
                <span class="visually-hidden">{prefix}</span>
                {label}
            </th>
        }
    };
    view! {
        <div class="latency-grid-scroll">
            <table id=id class="latency-grid">
                <caption class="hint">
                    "Rows send, columns receive: each cell is the delay the relay adds to that \
                     link (slider), uniform jitter on top (±) and a cut switch that holds the \
                     link's ops until it heals."
                </caption>
                {move || {
                    let ms = shape.get();
                    let cols = ms
                        .iter()
                        .map(|m| heading(m, "col", "to "))
                        .collect_view();
                    let rows = ms
                        .iter()
                        .map(|a| {
                            let cells = ms
                                .iter()
                                .map(|b| {
                                    if a.replica == b.replica {
                                        view! {
                                            <td class="self">
                                                <span aria-hidden="true">"—"</span>
                                                <span class="visually-hidden">"no link to itself"</span>
                                            </td>
                                        }
                                        .into_any()
                                    } else {
                                        let names = format!("{} to {}", a.name, b.name);
                                        view! {
                                            <LinkCell
                                                from=a.replica
                                                to=b.replica
                                                names=names
                                                matrix=matrix
                                                on_change=on_change
                                            />
                                        }
                                        .into_any()
                                    }
                                })
                                .collect_view();
                            view! {
                                <tr data-from=a.replica>
                                    {heading(a, "row", "from ")}
                                    {cells}
                                </tr>
                            }
                        })
                        .collect_view();
                    view! {
                        <thead>
                            <tr>
                                <td class="corner">
                                    <span aria-hidden="true">"from ↓ to →"</span>
                                </td>
                                {cols}
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    }
                }}
            </table>
        </div>
    }
}

/// One directed link's cell.
#[component]
fn LinkCell(
    from: NodeId,
    to: NodeId,
    /// `Ada to Bo`, for the controls' labels.
    names: String,
    matrix: Signal<Vec<Link>>,
    on_change: Callback<Link>,
) -> impl IntoView {
    let link = Memo::new(move |_| matrix.with(|m| link_in(m, from, to)));
    // The slider's value while it is dragged (the relay hears of it when it is let go).
    let dragging = RwSignal::new(None::<u32>);
    let delay = move || dragging.get().unwrap_or_else(|| link.get().delay_ms);
    let send = move |l: Link| on_change.run(l);
    let clamp = |s: String| s.trim().parse::<u32>().unwrap_or(0).min(MAX_MS);
    let heat = move || {
        let l = link.get();
        let d = dragging.get().unwrap_or(l.delay_ms);
        format!("--heat:{:.2}", f64::from(d) / f64::from(MAX_MS))
    };
    view! {
        <td
            class="link"
            data-link=format!("{from}-{to}")
            class:cut=move || link.get().cut
            style=heat
        >
            <span class="delay-ms mono">
                {move || {
                    let l = link.get();
                    summary(delay(), l.jitter_ms, l.cut)
                }}
            </span>
            <input
                type="range"
                class="delay"
                min="0"
                max=MAX_MS
                step=STEP_MS
                aria-label=format!("delay {names}, ms")
                aria-valuetext=move || format!("{} ms", delay())
                prop:value=delay
                on:input=move |ev| dragging.set(Some(clamp(event_target_value(&ev))))
                on:change=move |ev| {
                    dragging.set(None);
                    send(Link { delay_ms: clamp(event_target_value(&ev)), ..link.get_untracked() });
                }
            />
            <span class="link-sub">
                <label>
                    "± "
                    <input
                        type="number"
                        class="jitter"
                        min="0"
                        max=MAX_MS
                        step="10"
                        aria-label=format!("jitter {names}, ms")
                        prop:value=move || link.get().jitter_ms
                        on:change=move |ev| {
                            send(Link { jitter_ms: clamp(event_target_value(&ev)), ..link.get_untracked() });
                        }
                    />
                </label>
                <label>
                    <input
                        type="checkbox"
                        class="cut"
                        aria-label=format!("cut {names}")
                        prop:checked=move || link.get().cut
                        on:change=move |ev| {
                            send(Link { cut: event_target_checked(&ev), ..link.get_untracked() });
                        }
                    />
                    <span aria-hidden="true">" cut"</span>
                </label>
            </span>
        </td>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_link_is_the_default_and_a_present_one_is_found_by_direction() {
        let m = [Link {
            from: 1,
            to: 2,
            delay_ms: 300,
            jitter_ms: 20,
            cut: true,
        }];
        assert_eq!(link_in(&m, 1, 2).delay_ms, 300);
        let back = link_in(&m, 2, 1);
        assert_eq!((back.delay_ms, back.jitter_ms, back.cut), (0, 0, false));
        assert_eq!((back.from, back.to), (2, 1));
    }

    #[test]
    fn the_summary_names_only_what_is_set() {
        assert_eq!(summary(0, 0, false), "0 ms");
        assert_eq!(summary(300, 50, false), "300 ms ± 50");
        assert_eq!(summary(300, 0, true), "300 ms · cut");
    }
}
