//! The space-time view: a trace — pasted, dropped as a file, or handed over by a lab; in any
//! format the importers read (JSON lines, ShiViz/GoVector, TSViz, OTLP, Jaeger, our JSON),
//! detected or chosen — as Mermaid text, rendered by Mermaid (loaded on demand, only on this
//! page), beside our own SVG view with slanted message arrows; a window scrubber for long
//! traces; the import's notes and the validator's findings.

use std::cell::Cell;

use chronoscope::trace::import::{self, Format, ImportOptions};
use chronoscope::trace::{mermaid, shiviz, svg, validate, Trace};
use js_sys::{Function, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use crate::route::TRACE_STORAGE_KEY;

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

/// Reads the first file of a drop or paste event's `DataTransfer` (`dataTransfer` or
/// `clipboardData`) as text and hands it to `done`; returns whether there was a file.
fn read_dropped_file(event: &JsValue, field: &str, done: impl FnOnce(String) + 'static) -> bool {
    let file = Reflect::get(event, &field.into())
        .ok()
        .filter(|t| !t.is_undefined() && !t.is_null())
        .and_then(|t| Reflect::get(&t, &"files".into()).ok())
        .and_then(|files| Reflect::get(&files, &0u32.into()).ok())
        .filter(|f| !f.is_undefined() && !f.is_null());
    let Some(file) = file else { return false };
    let Ok(promise) = call_method(&file, "text", &[]) else {
        return false;
    };
    let ok = Closure::once_into_js(move |text: JsValue| done(text.as_string().unwrap_or_default()));
    let _ = call_method(&promise, "then", &[ok]);
    true
}

/// Which Mermaid diagram the view draws.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Diagram {
    Sequence,
    Flowchart,
    Graph,
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
    let format = RwSignal::new(None::<Format>);
    let renumber = RwSignal::new(false);
    let diagram = RwSignal::new(Diagram::Sequence);
    let from = RwSignal::new(0usize);
    let count = RwSignal::new(40usize);
    let mermaid_svg = RwSignal::new(String::new());
    let mermaid_error = RwSignal::new(String::new());

    let imported = Memo::new(move |_| {
        let options = ImportOptions {
            format: format.get(),
            renumber: renumber.get(),
            ..ImportOptions::default()
        };
        log.with(|l| import::import(l, &options).map_err(|e| e.to_string()))
    });
    let len = move || imported.with(|p| p.as_ref().map_or(0, |i| i.trace.len()));
    let text = Memo::new(move |_| {
        imported.with(|p| match p {
            Ok(i) => {
                let t = &i.trace;
                let w = t.window(from.get(), count.get());
                match diagram.get() {
                    Diagram::Sequence => mermaid::sequence_diagram(t, w),
                    Diagram::Flowchart => mermaid::happens_before_flowchart(t, w),
                    Diagram::Graph => mermaid::happens_before_graph(t, w),
                }
            }
            Err(_) => String::new(),
        })
    });
    // The space-time view is drawn as wide as its box: measured when it mounts and on resize.
    let out_ref = NodeRef::<leptos::html::Div>::new();
    let width = RwSignal::new(640.0f64);
    let measure = move || {
        if let Some(el) = out_ref.get_untracked() {
            let w = f64::from(el.client_width());
            if w > 0.0 && (w - width.get_untracked()).abs() >= 1.0 {
                width.set(w);
            }
        }
    };
    out_ref.on_load(move |_| request_animation_frame(measure));
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());
    let our_svg = move || {
        imported.with(|p| match p {
            Ok(i) => svg::space_time_svg(
                &i.trace,
                i.trace.window(from.get(), count.get()),
                width.get(),
            ),
            Err(_) => String::new(),
        })
    };
    let findings = move || {
        imported.with(|p| match p {
            Err(e) => vec![format!("cannot read the log: {e}")],
            Ok(i) => {
                let t: &Trace = &i.trace;
                let v = validate(t);
                let mut out = vec![format!("read as {}", i.format.describe())];
                out.extend(i.notes.iter().cloned());
                out.extend(i.skipped.iter().map(|s| format!("skipped {s}")));
                if v.is_empty() && i.skipped.is_empty() {
                    out.push(format!(
                        "{} events on {} nodes; every clock is legal",
                        t.len(),
                        t.nodes().len()
                    ));
                } else {
                    out.extend(v.iter().map(|v| v.describe(t)));
                    out.extend(import::hints(i, &v, renumber.get_untracked()));
                }
                out
            }
        })
    };
    let load = move |text: String| {
        log.set(text);
        from.set(0);
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        read_dropped_file(ev.as_ref(), "dataTransfer", load);
    };
    let on_paste = move |ev: leptos::ev::ClipboardEvent| {
        // A pasted file (copied in a file manager) is read; pasted text edits the box.
        if read_dropped_file(ev.as_ref(), "clipboardData", load) {
            ev.prevent_default();
        }
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
                "Paste or drop a log — JSON lines with vector clocks, ShiViz or GoVector, TSViz, "
                "an OpenTelemetry OTLP JSON export or Jaeger JSON — or open one from a lab. "
                "Mermaid draws every message flat, so its labels carry the delay; our view "
                "beside it slants each arrow by its real flight time."
            </p>
            <div
                class="card"
                id="trace-drop"
                on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
                on:drop=on_drop
            >
                <textarea
                    id="trace-log"
                    class="mono"
                    rows="8"
                    cols="100"
                    aria-label="trace log (paste text, or drop or paste a file)"
                    prop:value=move || log.get()
                    on:paste=on_paste
                    on:input=move |ev| load(event_target_value(&ev))
                ></textarea>
                <div class="controls">
                    <label>
                        " format "
                        <select
                            id="trace-format"
                            on:change=move |ev| format.set(Format::from_name(&event_target_value(&ev)))
                        >
                            <option value="detect" selected>"detect"</option>
                            {Format::ALL
                                .into_iter()
                                .map(|f| view! { <option value=f.name()>{f.describe()}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label>
                        <input
                            id="trace-renumber"
                            type="checkbox"
                            prop:checked=move || renumber.get()
                            on:change=move |ev| renumber.set(event_target_checked(&ev))
                        />
                        " renumber clocks"
                    </label>
                    <label>
                        " diagram "
                        <select
                            id="trace-diagram"
                            on:change=move |ev| diagram.set(match event_target_value(&ev).as_str() {
                                "flowchart" => Diagram::Flowchart,
                                "graph" => Diagram::Graph,
                                _ => Diagram::Sequence,
                            })
                        >
                            <option value="sequence" selected>"sequence diagram"</option>
                            <option value="flowchart">"happens-before flowchart"</option>
                            <option value="graph">"immediate happens-before (graph TD)"</option>
                        </select>
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
                    <textarea id="mermaid-text" class="mono" rows="10" cols="60" readonly aria-label="the diagram as Mermaid text" prop:value=move || text.get()></textarea>
                </div>
                <div class="card">
                    <h2>"Space-time view"</h2>
                    <div id="space-time-out" node_ref=out_ref inner_html=our_svg></div>
                </div>
            </div>
        </section>
    }
}
