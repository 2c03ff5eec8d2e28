//! The frame's controls: the run bar (play / pause, single step, reset, speed, seed, run to a
//! time, the simulated time, open in the space-time view), one control per parameter, and the
//! per-node table for parameters with a value per node.

use chronoscope::labs::{ParamKind, ParamSpec};
use chronoscope::sim::SimTime;
use leptos::prelude::*;

use super::table::Swatch;
use super::{Run, Speed};
use crate::route::open_in_trace_view;

/// The value of item `i` of a per-node list.
fn item(list: &str, i: usize) -> String {
    list.split(',').nth(i).unwrap_or("").to_owned()
}

/// `list` with item `i` set to `v` (padding with `pad`).
fn with_item(list: &str, i: usize, v: &str, pad: &str) -> String {
    let mut items: Vec<String> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    while items.len() <= i {
        items.push(pad.to_owned());
    }
    items[i] = v.to_owned();
    items.join(",")
}

/// One control for one value of `spec` (node `node` of a per-node list, or the single value).
fn control(run: Run, spec: &'static ParamSpec, node: Option<usize>, label: String) -> AnyView {
    let value = move || {
        run.settings.with(|s| {
            let v = s.get(spec.key).unwrap_or(spec.default);
            match node {
                Some(i) => item(v, i),
                None => v.to_owned(),
            }
        })
    };
    let set = move |v: String| {
        let v = match node {
            Some(i) => {
                let list = run
                    .settings
                    .with_untracked(|s| s.get(spec.key).unwrap_or("").to_owned());
                let pad = spec.default.split(',').next().unwrap_or("0");
                with_item(&list, i, &v, pad)
            }
            None => v,
        };
        run.change(spec.key, &v);
    };
    let node_attr = node.map(|i| i.to_string());
    match spec.kind {
        ParamKind::Integer { min, max } => view! {
            <input
                type="number"
                min=min.to_string()
                max=max.to_string()
                data-param=spec.key
                data-node=node_attr
                aria-label=label
                title=spec.help
                prop:value=value
                on:change=move |ev| set(event_target_value(&ev))
            />
        }
        .into_any(),
        ParamKind::Number {
            min,
            max,
            step,
            unit,
        } => {
            // While dragging only the number beside the slider follows; the run changes
            // when the slider is let go.
            let shown = RwSignal::new(None::<String>);
            view! {
                <span class="range">
                    <input
                        type="range"
                        min=min.to_string()
                        max=max.to_string()
                        step=step.to_string()
                        data-param=spec.key
                        data-node=node_attr
                        aria-label=label
                        title=spec.help
                        prop:value=value
                        on:input=move |ev| shown.set(Some(event_target_value(&ev)))
                        on:change=move |ev| {
                            shown.set(None);
                            set(event_target_value(&ev));
                        }
                    />
                    <output class="mono">{move || shown.get().unwrap_or_else(value)} " " {unit}</output>
                </span>
            }
            .into_any()
        }
        ParamKind::Choice(options) => view! {
            <select
                data-param=spec.key
                data-node=node_attr
                aria-label=label
                title=spec.help
                on:change=move |ev| set(event_target_value(&ev))
            >
                {options
                    .iter()
                    .map(|(v, l)| {
                        let v = *v;
                        view! { <option value=v selected=move || value() == v>{*l}</option> }
                    })
                    .collect_view()}
            </select>
        }
        .into_any(),
        ParamKind::Flag => view! {
            <input
                type="checkbox"
                data-param=spec.key
                data-node=node_attr
                aria-label=label
                title=spec.help
                prop:checked=move || value() == "1"
                on:change=move |ev| set(if event_target_checked(&ev) { "1".into() } else { "0".into() })
            />
        }
        .into_any(),
        ParamKind::Text => view! {
            <input
                type="text"
                class="mono"
                data-param=spec.key
                data-node=node_attr
                aria-label=label
                title=spec.help
                placeholder=spec.help
                prop:value=value
                on:change=move |ev| set(event_target_value(&ev))
            />
        }
        .into_any(),
    }
}

/// The controls card.
#[component]
pub fn Controls(run: Run) -> impl IntoView {
    let specs = run.spec().params;
    let single: Vec<&'static ParamSpec> = specs.iter().filter(|s| !s.per_node).collect();
    let per_node: Vec<&'static ParamSpec> = specs.iter().filter(|s| s.per_node).collect();
    let has_per_node = !per_node.is_empty();
    let time = move || {
        run.with_lab(|l| match l.end() {
            Some(end) => format!(
                "t = {:.3} s of {:.0} s",
                l.now().as_secs_f64(),
                end.as_secs_f64()
            ),
            None => format!("t = {:.3} s", l.now().as_secs_f64()),
        })
        .unwrap_or_default()
    };
    let events = move || run.with_lab(|l| l.events()).unwrap_or(0);
    let run_to = RwSignal::new(String::new());
    let seed_value = move || run.params.with(|p| p.get("seed").unwrap_or("1").to_owned());
    let nodes = move || run.with_lab(|l| l.nodes()).unwrap_or_default();
    let node_names = Memo::new(move |_| nodes());
    view! {
        <div class="card frame-controls">
            <div class="run-bar" role="group" aria-label="Run controls">
                <button
                    class="play"
                    aria-pressed=move || run.playing.get().to_string()
                    on:click=move |_| {
                        if run.finished() {
                            run.reset();
                            run.playing.set(true);
                        } else {
                            run.playing.update(|p| *p = !*p);
                        }
                    }
                >
                    {move || if run.playing.get() { "⏸ Pause" } else { "▶ Play" }}
                </button>
                <button class="step" title="pause and handle exactly one event" on:click=move |_| run.step()>
                    "Step"
                </button>
                <button class="reset" title="start this run again from t = 0" on:click=move |_| run.reset()>
                    "Reset"
                </button>
                <label>
                    "Speed "
                    <select
                        class="speed"
                        on:change=move |ev| run.speed.set(Speed::parse(&event_target_value(&ev)))
                    >
                        {Speed::ALL
                            .into_iter()
                            .map(|s| {
                                view! {
                                    <option value=s.key() selected=move || run.speed.get() == s>
                                        {s.label()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "Seed "
                    <input
                        type="number"
                        class="seed"
                        min="0"
                        prop:value=seed_value
                        on:change=move |ev| run.change("seed", event_target_value(&ev).trim())
                    />
                </label>
                <button
                    class="new-seed"
                    title="another seed: the same parameters, other random choices"
                    on:click=move |_| {
                        let s = (js_sys::Math::random() * 1_000_000.0) as u64;
                        run.change("seed", &s.to_string());
                    }
                >
                    "New seed"
                </button>
                <form
                    class="run-to"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        if let Ok(t) = run_to.get_untracked().trim().parse::<f64>() {
                            run.playing.set(false);
                            run.run_to(SimTime::from_secs_f64(t));
                        }
                    }
                >
                    <label>
                        "Run to "
                        <input
                            type="number"
                            class="run-to"
                            min="0"
                            step="any"
                            placeholder="s"
                            prop:value=move || run_to.get()
                            on:input=move |ev| run_to.set(event_target_value(&ev))
                        />
                        " s"
                    </label>
                    <button type="submit" class="run-to-go">"Go"</button>
                </form>
                <span class="mono frame-time" aria-live="off">{time}</span>
                <span class="mono">
                    <span class="frame-events">{events}</span>
                    " events"
                </span>
                <button
                    class="open-trace"
                    title="this run's messages and events as a space-time diagram"
                    on:click=move |_| {
                        untrack(|| run.with_lab(|l| open_in_trace_view(l.trace())));
                    }
                >
                    "Open in the space-time view"
                </button>
            </div>
            <p class="frame-last hint" aria-live="polite">{move || run.last.get()}</p>
            <p class="error" role="alert">{move || run.error.get()}</p>
            <div class="params">
                {single
                    .into_iter()
                    .map(|spec| {
                        view! {
                            <label class="param" title=spec.help>
                                <span>{spec.label}</span>
                                " "
                                {control(run, spec, None, spec.label.to_owned())}
                            </label>
                        }
                    })
                    .collect_view()}
            </div>
            <Show when=move || has_per_node>
                <table class="per-node">
                    <thead>
                        <tr>
                            <th scope="col">"Node"</th>
                            {per_node
                                .iter()
                                .map(|s| view! { <th scope="col" title=s.help>{s.label}</th> })
                                .collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        {
                            let per_node = per_node.clone();
                            move || {
                                node_names
                                    .get()
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, name)| {
                                        let cells = per_node
                                            .iter()
                                            .map(|&spec| {
                                                let label = format!("{} of {name}", spec.label);
                                                view! { <td>{control(run, spec, Some(i), label)}</td> }
                                            })
                                            .collect_view();
                                        view! {
                                            <tr class="node-row" data-node=i.to_string()>
                                                <th scope="row"><Swatch node=i />{name}</th>
                                                {cells}
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }
                        }
                    </tbody>
                </table>
            </Show>
        </div>
    }
}
