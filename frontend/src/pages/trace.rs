//! The space-time view: a trace (ShiViz log) as Mermaid text, rendered by Mermaid (loaded on
//! demand, only on this page), beside our own SVG view with slanted message arrows; a window
//! scrubber for long traces; the validator's findings.

use std::cell::Cell;

use chronoscope::trace::{mermaid, shiviz, svg, validate, Trace};
use js_sys::{Function, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

/// Where other pages leave a trace (ShiViz text) for this view.
pub const TRACE_STORAGE_KEY: &str = "chronoscope.trace";

/// Hands `trace` to this view: stores its ShiViz text under [`TRACE_STORAGE_KEY`] and
/// navigates to `#/trace`. Every page that runs something opens its trace this way.
pub fn open_in_trace_view(trace: &Trace) {
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(TRACE_STORAGE_KEY, &shiviz::export(trace));
        let _ = window().location().set_hash("#/trace");
    }
}

/// Mermaid's bundle, copied from npm into the dist by the Makefile.
const MERMAID_SRC: &str = "vendor/mermaid/mermaid.min.js";

/// A small three-node example shown when no page has handed over a trace.
fn example() -> String {
    let mut t = Trace::new();
    t.name_node(0, "alice");
    t.name_node(1, "bob");
    t.name_node(2, "carol");
    t.local(0, 0.0, "start");
    let m = t.send(0, 1.0, "hello");
    let n = t.send(2, 2.0, "ping");
    t.receive(1, m, 4.0, "").expect("sent");
    t.receive(1, n, 4.5, "").expect("sent");
    let r = t.send(1, 5.0, "reply");
    t.receive(0, r, 6.0, "").expect("sent");
    t.receive(2, m, 7.0, "late hello").ok();
    shiviz::export(&t)
}

thread_local! {
    static RENDERS: Cell<u32> = const { Cell::new(0) };
}

fn mermaid_global() -> Option<JsValue> {
    Reflect::get(&window(), &"mermaid".into())
        .ok()
        .filter(|m| !m.is_undefined())
}

/// Adds Mermaid's `<script>` once; calls `ready` when `window.mermaid` exists.
fn load_mermaid(ready: impl FnOnce() + 'static) {
    if mermaid_global().is_some() {
        ready();
        return;
    }
    let doc = document();
    let script = match doc.get_element_by_id("mermaid-script") {
        Some(s) => s,
        None => {
            let Ok(s) = doc.create_element("script") else {
                return;
            };
            let _ = s.set_attribute("id", "mermaid-script");
            let _ = s.set_attribute("src", MERMAID_SRC);
            if let Some(body) = doc.body() {
                let _ = Reflect::get(&body, &"appendChild".into())
                    .ok()
                    .and_then(|f| f.dyn_into::<Function>().ok())
                    .map(|f| f.call1(&body, &s));
            }
            s
        }
    };
    let cb = Closure::once_into_js(move || {
        if let Some(m) = mermaid_global() {
            let init = js_sys::Object::new();
            let _ = Reflect::set(&init, &"startOnLoad".into(), &false.into());
            let _ = call_method(&m, "initialize", &[init.into()]);
            ready();
        }
    });
    let _ = Reflect::get(&script, &"addEventListener".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .map(|f| f.call2(&script, &"load".into(), &cb));
}

fn call_method(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(obj, &name.into())?.dyn_into()?;
    let array = js_sys::Array::new();
    for a in args {
        array.push(a);
    }
    f.apply(obj, &array)
}

/// Renders `text` with Mermaid and hands the SVG (or an error) to `done`, unless a newer
/// render has started meanwhile.
fn render_mermaid(text: String, done: impl Fn(Result<String, String>) + 'static) {
    let generation = RENDERS.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    load_mermaid(move || {
        let Some(m) = mermaid_global() else { return };
        let id = format!("mermaid-diagram-{generation}");
        let promise = match call_method(&m, "render", &[id.into(), text.into()]) {
            Ok(p) => p,
            Err(e) => {
                done(Err(format!("{e:?}")));
                return;
            }
        };
        let done = std::rc::Rc::new(done);
        let (ok_done, err_done) = (done.clone(), done);
        let current = move || RENDERS.with(Cell::get) == generation;
        let ok = Closure::once_into_js(move |result: JsValue| {
            if current() {
                let svg = Reflect::get(&result, &"svg".into())
                    .ok()
                    .and_then(|s| s.as_string())
                    .unwrap_or_default();
                ok_done(Ok(svg));
            }
        });
        let err = Closure::once_into_js(move |e: JsValue| {
            let msg = Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_else(|| format!("{e:?}"));
            err_done(Err(msg));
        });
        let _ = call_method(&promise, "then", &[ok, err]);
    });
}

/// The space-time (trace) view.
#[component]
pub fn TraceView() -> impl IntoView {
    let stored = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(TRACE_STORAGE_KEY).ok().flatten());
    let log = RwSignal::new(stored.unwrap_or_else(example));
    let flowchart = RwSignal::new(false);
    let from = RwSignal::new(0usize);
    let count = RwSignal::new(40usize);
    let mermaid_svg = RwSignal::new(String::new());
    let mermaid_error = RwSignal::new(String::new());

    let parsed = Memo::new(move |_| log.with(|l| shiviz::import(l).map_err(|e| e.to_string())));
    let len = move || parsed.with(|p| p.as_ref().map_or(0, Trace::len));
    let text = Memo::new(move |_| {
        parsed.with(|p| match p {
            Ok(t) => {
                let w = t.window(from.get(), count.get());
                if flowchart.get() {
                    mermaid::happens_before_flowchart(t, w)
                } else {
                    mermaid::sequence_diagram(t, w)
                }
            }
            Err(_) => String::new(),
        })
    });
    let our_svg = move || {
        parsed.with(|p| match p {
            Ok(t) => svg::space_time_svg(t, t.window(from.get(), count.get()), 640.0),
            Err(_) => String::new(),
        })
    };
    let findings = move || {
        parsed.with(|p| match p {
            Err(e) => vec![format!("cannot read the log: {e}")],
            Ok(t) => {
                let v = validate(t);
                if v.is_empty() {
                    vec![format!(
                        "{} events on {} nodes; every clock is legal",
                        t.len(),
                        t.nodes().len()
                    )]
                } else {
                    v.iter().map(ToString::to_string).collect()
                }
            }
        })
    };

    Effect::new(move |_| {
        let t = text.get();
        if t.is_empty() {
            return;
        }
        render_mermaid(t, move |r| match r {
            Ok(svg) => {
                mermaid_error.set(String::new());
                mermaid_svg.set(svg);
            }
            Err(e) => mermaid_error.set(e),
        });
    });

    let copy = move |_| {
        let t = text.get_untracked();
        let nav = window().navigator();
        if let Ok(clip) = Reflect::get(&nav, &"clipboard".into()) {
            let _ = call_method(&clip, "writeText", &[t.into()]);
        }
    };

    view! {
        <section class="page trace">
            <h1>"Space-time diagrams"</h1>
            <p class="hint">
                "Paste a ShiViz log (an event line, then " <code>"host {\"host\":n, …}"</code>
                "), or open one from a lab. Mermaid draws every message flat, so its labels carry "
                "the delay; our view beside it slants each arrow by its real flight time."
            </p>
            <div class="card">
                <textarea
                    id="trace-log"
                    class="mono"
                    rows="8"
                    cols="100"
                    prop:value=move || log.get()
                    on:change=move |ev| {
                        log.set(event_target_value(&ev));
                        from.set(0);
                    }
                ></textarea>
                <div class="controls">
                    <label>
                        <input
                            type="checkbox"
                            prop:checked=move || flowchart.get()
                            on:change=move |ev| flowchart.set(event_target_checked(&ev))
                        />
                        " happens-before flowchart"
                    </label>
                    <label>
                        " window from event "
                        <input
                            id="trace-from"
                            type="range"
                            min="0"
                            max=move || len().saturating_sub(1).to_string()
                            prop:value=move || from.get().to_string()
                            on:input=move |ev| from.set(event_target_value(&ev).parse().unwrap_or(0))
                        />
                        {move || format!("{} of {}", from.get(), len())}
                    </label>
                    <label>
                        " events shown "
                        <input
                            type="number"
                            min="1"
                            max="500"
                            prop:value=move || count.get().to_string()
                            on:change=move |ev| {
                                count.set(event_target_value(&ev).parse::<usize>().unwrap_or(40).clamp(1, 500))
                            }
                        />
                    </label>
                </div>
                <ul id="trace-findings">
                    {move || findings().into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}
                </ul>
            </div>
            <div class="diagrams">
                <div class="card">
                    <h2>"Mermaid"</h2>
                    <div id="mermaid-out" inner_html=move || mermaid_svg.get()></div>
                    <p class="error">{move || mermaid_error.get()}</p>
                    <button on:click=copy>"Copy Mermaid text"</button>
                    <textarea id="mermaid-text" class="mono" rows="10" cols="60" readonly prop:value=move || text.get()></textarea>
                </div>
                <div class="card">
                    <h2>"Space-time view"</h2>
                    <div id="space-time-out" inner_html=our_svg></div>
                </div>
            </div>
        </section>
    }
}
