//! The clock drift lab on the lab frame: nodes with drifting clocks and a sync algorithm, run
//! live in the tab by `chronoscope::labs::drift` (the same scenario as chronoscope drift),
//! plus a real four-timestamp probe of this tab's clock against the relay's.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chronoscope::{
    labs::drift::{self, frame::DriftRun, node_name, params::with_jump},
    labs::Table,
    protocol::{ClientFrame, ServerFrame, MAX_PROBE_DELAY_MS},
    sync::ntp::{ClockFilter, Exchange},
    NodeId,
};
use leptos::prelude::*;

use crate::frame::{Chart, DataTable, LabFrame, Run, Speed};

/// Sync events shown in the log (the newest).
const LOG_LINES: usize = 6;

/// The drift lab page.
#[component]
pub fn Drift() -> impl IntoView {
    let run = Run::new(&drift::SPEC, Speed::Times(10.0));
    let offsets = Signal::derive(move || {
        run.with(|r: &DriftRun| r.offset_chart())
            .unwrap_or_else(|| {
                chronoscope::labs::chart::LineChart::new("offsets", "", "time_s", "")
            })
    });
    let skew = Signal::derive(move || {
        run.with(|r: &DriftRun| r.skew_chart())
            .unwrap_or_else(|| chronoscope::labs::chart::LineChart::new("skew", "", "time_s", ""))
    });
    let sources = Signal::derive(move || {
        run.with(|r: &DriftRun| r.nodes_table())
            .unwrap_or_else(|| Table::new("nodes", "", &[]))
    });
    let log = move || {
        run.with(|r: &DriftRun| {
            let events = r.lab.events();
            events[events.len().saturating_sub(LOG_LINES)..]
                .iter()
                .rev()
                .map(|e| {
                    let text = e.describe().join("\n");
                    view! { <pre class="event">{format!("[T={:.3}s] {text}", e.at.as_secs_f64())}</pre> }
                })
                .collect_view()
        })
    };
    let jump_node = RwSignal::new(0u32);
    let jump = move |delta: f64| {
        let at = run.now();
        let next = with_jump(
            &run.params.get_untracked(),
            jump_node.get_untracked(),
            delta,
            at,
        );
        run.set_params(next);
    };
    let node_count = move || run.with(|r: &DriftRun| r.lab.len()).unwrap_or(0);
    view! {
        <LabFrame
            run=run
            title="Clock drift lab"
            intro="Every node has a quartz clock that runs a little fast or slow (ppm). Pick an \
                   algorithm and watch it pull the clocks together — or fail to. The same scenario \
                   runs headless with chronoscope drift."
        >
            <div class="card jumps">
                <h2>"Inject a clock jump now"</h2>
                <label>
                    "Node "
                    <select class="jump-node" on:change=move |ev| {
                        jump_node.set(event_target_value(&ev).parse().unwrap_or(0))
                    }>
                        {move || {
                            (0..node_count() as NodeId)
                                .map(|i| view! {
                                    <option value=i.to_string() selected=move || jump_node.get() == i>
                                        {node_name(i)}
                                    </option>
                                })
                                .collect_view()
                        }}
                    </select>
                </label>
                " "
                <button class="jump-forward" on:click=move |_| jump(1.0)>"+1 s"</button>
                " "
                <button class="jump-back" on:click=move |_| jump(-1.0)>"−1 s"</button>
                <span class="hint">" The jump becomes part of the run's link (the jumps parameter)."</span>
            </div>
            <div class="drift-charts">
                <Chart run=run chart=offsets />
                <Chart run=run chart=skew />
            </div>
            <div class="card">
                <h2>"Sources (chrony-like)"</h2>
                <DataTable
                    table=sources
                    headings=&["node", "offset ms", "RMS corr ms", "freq est ppm", "freq true ppm", "RTT ms", "disp ms", "status", "syncs", "back", "TT ε ms", "HLC"]
                />
            </div>
            <div class="card">
                <h2>"Sync events"</h2>
                <div class="events">{log}</div>
                <Show when=move || run.with(|r: &DriftRun| r.lab.events().is_empty()).unwrap_or(true)>
                    <p class="hint empty">
                        "No sync round yet: the first one comes after the algorithm's interval                          (press Play, or Run to a later time)."
                    </p>
                </Show>
            </div>
            <RelayProbe />
        </LabFrame>
    }
}

/// The real network: this tab's clock against the relay's, by NTP's four timestamps over the
/// WebSocket, with extra delay added on the way out and/or back to show the asymmetry bias.
#[component]
fn RelayProbe() -> impl IntoView {
    // A relay room of its own: this page is in the labs bundle, which does not share the
    // shell's connection (and must not join the editor's room as another member).
    let relay = Some(crate::frame::lab_room("clock"));
    let out_ms = RwSignal::new(0.0f64);
    let back_ms = RwSignal::new(0.0f64);
    let last = RwSignal::new(None::<(f64, f64)>);
    let best = RwSignal::new(None::<(f64, f64)>);
    let probes = RwSignal::new(0u32);
    let filter = StoredValue::new_local(ClockFilter::new());
    let alive = Arc::new(AtomicBool::new(true));

    if let Some(relay) = relay {
        let alive_h = alive.clone();
        relay.on_frame(move |frame| {
            let ServerFrame::Pong { t1, t2, t3 } = *frame else {
                return;
            };
            if !alive_h.load(Ordering::Relaxed) {
                return;
            }
            let t4 = js_sys::Date::now();
            let x = Exchange {
                t1: t1 / 1e3,
                t2: t2 / 1e3,
                t3: t3 / 1e3,
                t4: t4 / 1e3,
            };
            last.set(Some((x.offset(), x.delay())));
            filter.update_value(|f| f.push(x.sample(1e-3)));
            best.set(filter.with_value(|f| f.best()).map(|s| (s.offset, s.delay)));
            probes.update(|p| *p += 1);
        });
        // The relay itself waits `up_ms` before stamping t2 and `down_ms` after stamping t3:
        // an asymmetric path on the real connection.
        let send = move || {
            relay.send(&ClientFrame::Ping {
                t1: js_sys::Date::now(),
                up_ms: out_ms.get_untracked().clamp(0.0, MAX_PROBE_DELAY_MS as f64) as u32,
                down_ms: back_ms
                    .get_untracked()
                    .clamp(0.0, MAX_PROBE_DELAY_MS as f64) as u32,
            });
        };
        if let Ok(h) = set_interval_with_handle(send, Duration::from_secs(1)) {
            let alive_c = alive.clone();
            on_cleanup(move || {
                alive_c.store(false, Ordering::Relaxed);
                h.clear();
            });
        }
    }

    let fmt = |v: Option<(f64, f64)>| {
        v.map_or("–".to_owned(), |(o, d)| {
            format!("offset {:+.2} ms, RTT {:.2} ms", o * 1e3, d * 1e3)
        })
    };
    view! {
        <div class="card probe">
            <h3>"This tab against the relay's clock (real network)"</h3>
            <p class="hint">
                "Every second the tab sends " <code>"Ping{t1}"</code> ", the relay answers "
                <code>"Pong{t1,t2,t3}"</code> " and the tab reads t4: offset = ((t2−t1)+(t3−t4))/2, "
                "delay = (t4−t1)−(t3−t2). The relay adds the delays below to the way up (before t2) "
                "and the way down (after t3): delay on one way only biases the offset by half of it."
            </p>
            <label>
                "extra delay up "
                <input type="range" min="0" max="400" step="10" class="probe-out"
                    prop:value=move || out_ms.get().to_string()
                    on:input=move |ev| out_ms.set(event_target_value(&ev).parse().unwrap_or(0.0)) />
                <span class="mono">{move || format!("{:.0} ms", out_ms.get())}</span>
            </label>
            <label>
                " extra delay down "
                <input type="range" min="0" max="400" step="10" class="probe-back"
                    prop:value=move || back_ms.get().to_string()
                    on:input=move |ev| back_ms.set(event_target_value(&ev).parse().unwrap_or(0.0)) />
                <span class="mono">{move || format!("{:.0} ms", back_ms.get())}</span>
            </label>
            <ul class="mono">
                <li class="probe-last">"last: " {move || fmt(last.get())}</li>
                <li class="probe-best">"clock filter (min delay of last 8): " {move || fmt(best.get())}</li>
                <li>
                    "expected bias from the sliders: "
                    {move || format!("{:+.1} ms", (out_ms.get() - back_ms.get()) / 2.0)}
                    " · probes: " {move || probes.get()}
                </li>
            </ul>
        </div>
    }
}
