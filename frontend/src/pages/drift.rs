//! The clock drift lab page: nodes with drifting clocks and a sync algorithm, run live in the
//! tab by `chronoscope::labs::drift` (the same scenario as `chronoscope drift`), plus a real
//! four-timestamp probe of this tab's clock against the relay's.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chronoscope::{
    clocks::physical_clock::AdjustPolicy,
    labs::drift::{node_name, DriftConfig, DriftLab, SyncAlgorithm, TRACE_CAP},
    protocol::{ClientFrame, ServerFrame, MAX_PROBE_DELAY_MS},
    sim::Latency,
    sync::ntp::{ClockFilter, Exchange},
    NodeId,
};
use leptos::prelude::*;

use super::trace::open_in_trace_view;
use crate::connection::Relay;

/// Wall-clock period of the animation.
const TICK: Duration = Duration::from_millis(100);
/// Samples drawn in the chart.
const WINDOW: usize = 240;
/// Chart size in SVG units.
const W: f64 = 720.0;
const H: f64 = 220.0;
const SKEW_H: f64 = 90.0;
/// One colour per node (cycled).
const PALETTE: [&str; 8] = [
    "#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#8ab17d", "#d62828", "#457b9d",
];

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The page's settings; changing the node count rebuilds the lab, the rest apply live.
#[derive(Clone, PartialEq)]
struct Settings {
    drifts: Vec<f64>,
    latencies_ms: Vec<f64>,
    liars: Vec<bool>,
    sync: SyncAlgorithm,
    interval: f64,
    step: bool,
    speed: f64,
}

impl Settings {
    fn new(n: usize) -> Self {
        let base = DriftConfig::new(n, 100.0);
        Self {
            drifts: base.clocks.iter().map(|c| c.drift_ppm).collect(),
            latencies_ms: vec![10.0; n],
            liars: vec![false; n],
            sync: SyncAlgorithm::Berkeley,
            interval: 20.0,
            step: false,
            speed: 10.0,
        }
    }

    fn config(&self) -> DriftConfig {
        let mut c = DriftConfig::new(self.drifts.len(), 0.0);
        for (spec, d) in c.clocks.iter_mut().zip(&self.drifts) {
            spec.drift_ppm = *d;
        }
        c.sync = self.sync;
        c.interval = Duration::from_secs_f64(self.interval);
        c.adjust = if self.step {
            AdjustPolicy::Step
        } else {
            AdjustPolicy::SLEW
        };
        c.liars = (0..self.liars.len() as NodeId)
            .filter(|&i| self.liars[i as usize])
            .collect();
        c.faults_tolerated = c.liars.len().max(1);
        c.sample_every = sample_period(self.speed);
        c
    }
}

/// One snapshot per animation tick, whatever the speed.
fn sample_period(speed: f64) -> Duration {
    Duration::from_secs_f64((speed * TICK.as_secs_f64()).max(0.05))
}

fn node_latency(ms: f64) -> Latency {
    let mean = ms.max(0.0) / 1e3;
    Latency::Uniform {
        min: Duration::from_secs_f64(mean * 0.5),
        max: Duration::from_secs_f64(mean * 1.5),
    }
}

fn build(settings: &Settings) -> DriftLab {
    let mut lab = DriftLab::new(settings.config())
        .or_else(|_| {
            // A liar leader is refused by Cristian and Berkeley: drop the leader's lie.
            let mut c = settings.config();
            c.liars.retain(|&l| l != 0);
            DriftLab::new(c)
        })
        .expect("the page only builds valid labs");
    for (i, ms) in settings.latencies_ms.iter().enumerate() {
        let _ = lab.set_node_latency(i as NodeId, node_latency(*ms));
    }
    lab.set_history_limit(WINDOW * 2);
    lab
}

/// The drift lab page.
#[component]
pub fn Drift() -> impl IntoView {
    let settings = RwSignal::new(Settings::new(4));
    let lab = StoredValue::new_local(build(&settings.get_untracked()));
    let tick = RwSignal::new(0u64);
    let paused = RwSignal::new(false);
    let error = RwSignal::new(String::new());

    let refresh = move || tick.update(|t| *t += 1);
    let rebuild = move || {
        lab.set_value(build(&settings.get_untracked()));
        refresh();
    };
    let with_lab = move |f: &dyn Fn(&mut DriftLab) -> Result<(), String>| {
        let mut result = Ok(());
        lab.update_value(|l| result = f(l));
        error.set(result.err().unwrap_or_default());
        refresh();
    };

    if let Ok(handle) = set_interval_with_handle(
        move || {
            if paused.get_untracked() {
                return;
            }
            let speed = settings.with_untracked(|s| s.speed);
            lab.update_value(|l| {
                let until = l.now() + Duration::from_secs_f64(speed * TICK.as_secs_f64());
                l.run_until(until);
            });
            refresh();
        },
        TICK,
    ) {
        on_cleanup(move || handle.clear());
    }

    let set_nodes = move |n: usize| {
        let n = n.clamp(2, 16);
        settings.update(|s| {
            let speed = s.speed;
            let sync = s.sync;
            *s = Settings::new(n);
            s.speed = speed;
            s.sync = sync;
        });
        rebuild();
    };

    let node_rows = move || {
        let s = settings.get();
        (0..s.drifts.len())
            .map(|i| {
                let id = i as NodeId;
                let drift = s.drifts[i];
                let latency = s.latencies_ms[i];
                let liar = s.liars[i];
                view! {
                    <tr class="node-row">
                        <td style=format!("color:{}", color(i))>
                            <b>{format!("Node {}", node_name(id))}</b>
                        </td>
                        <td>
                            <input
                                type="range" min="-500" max="500" step="5"
                                class="drift-slider"
                                prop:value=drift.to_string()
                                on:change=move |ev| {
                                    let v: f64 = event_target_value(&ev).parse().unwrap_or(0.0);
                                    settings.update(|s| s.drifts[i] = v);
                                    with_lab(&|l| l.set_drift(id, v).map_err(|e| e.to_string()));
                                }
                            />
                            <span class="mono">{format!("{drift:+.0} ppm")}</span>
                        </td>
                        <td>
                            <input
                                type="range" min="0" max="200" step="1"
                                prop:value=latency.to_string()
                                on:change=move |ev| {
                                    let v: f64 = event_target_value(&ev).parse().unwrap_or(10.0);
                                    settings.update(|s| s.latencies_ms[i] = v);
                                    with_lab(&|l| {
                                        l.set_node_latency(id, node_latency(v)).map_err(|e| e.to_string())
                                    });
                                }
                            />
                            <span class="mono">{format!("{latency:.0} ms")}</span>
                        </td>
                        <td>
                            <button on:click=move |_| with_lab(&|l| l.inject_jump(id, 1.0).map_err(|e| e.to_string()))>
                                "+1 s"
                            </button>
                            <button on:click=move |_| with_lab(&|l| l.inject_jump(id, -1.0).map_err(|e| e.to_string()))>
                                "−1 s"
                            </button>
                            <button
                                class:active=liar
                                on:click=move |_| {
                                    let now = !settings.with_untracked(|s| s.liars[i]);
                                    let mut ok = false;
                                    with_lab(&|l| l.set_liar(id, now).map_err(|e| e.to_string()));
                                    lab.with_value(|l| ok = l.config().liars.contains(&id) == now);
                                    if ok {
                                        settings.update(|s| s.liars[i] = now);
                                        // As at reset: fault-tolerant averaging drops as many
                                        // values at each end as there are liars (at least one).
                                        lab.update_value(|l| {
                                            let f = l.config().liars.len().max(1);
                                            l.set_faults_tolerated(f);
                                        });
                                    }
                                }
                            >
                                {if liar { "liar ✓" } else { "lie" }}
                            </button>
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };

    let chart = move || {
        tick.get();
        lab.with_value(|l| {
            let snaps = l.snapshots();
            let shown = &snaps[snaps.len().saturating_sub(WINDOW)..];
            let n = l.len();
            let liars = &l.config().liars;
            let mut scale = 1e-3f64; // at least ±1 ms
            for s in shown {
                for (i, o) in s.offsets.iter().enumerate() {
                    if !liars.contains(&(i as NodeId)) {
                        scale = scale.max(o.abs());
                    }
                }
            }
            let skew_scale = shown.iter().map(|s| s.skew).fold(1e-3, f64::max);
            let x = |k: usize| k as f64 * W / (WINDOW - 1) as f64;
            let lines = (0..n)
                .map(|i| {
                    let pts: Vec<String> = shown
                        .iter()
                        .enumerate()
                        .map(|(k, s)| {
                            let y = H / 2.0 - (s.offsets[i] / scale).clamp(-1.2, 1.2) * (H / 2.0 - 10.0);
                            format!("{:.1},{:.1}", x(k), y)
                        })
                        .collect();
                    let dash = if liars.contains(&(i as NodeId)) { "4 3" } else { "" };
                    view! {
                        <polyline
                            class="offset-line"
                            data-node=node_name(i as NodeId)
                            points=pts.join(" ")
                            fill="none"
                            stroke=color(i)
                            stroke-width="1.5"
                            stroke-dasharray=dash
                        />
                    }
                })
                .collect_view();
            let skew_pts: Vec<String> = shown
                .iter()
                .enumerate()
                .map(|(k, s)| format!("{:.1},{:.1}", x(k), SKEW_H - 5.0 - s.skew / skew_scale * (SKEW_H - 15.0)))
                .collect();
            let last = shown.last();
            let t = last.map_or(0.0, |s| s.at.as_secs_f64());
            let skew = last.map_or(0.0, |s| s.skew);
            view! {
                <div class="chart-head mono">
                    <span class="sim-time">{format!("T = {t:.1} s")}</span>
                    " · "
                    <span class="skew">{format!("skew {:.3} ms", skew * 1e3)}</span>
                    " · "
                    <span class="samples">{format!("{} samples", snaps.len())}</span>
                </div>
                <svg class="chart offsets" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none">
                    <line x1="0" y1=H / 2.0 x2=W y2=H / 2.0 stroke="#bbb" stroke-dasharray="2 2" />
                    <text x="4" y="12" class="axis">{format!("+{:.2} ms", scale * 1e3)}</text>
                    <text x="4" y=H - 4.0 class="axis">{format!("−{:.2} ms", scale * 1e3)}</text>
                    <text x=W - 110.0 y="12" class="axis">"offset from true time"</text>
                    {lines}
                </svg>
                <svg class="chart skew-chart" viewBox=format!("0 0 {W} {SKEW_H}") preserveAspectRatio="none">
                    <text x="4" y="12" class="axis">{format!("skew (max − min), up to {:.2} ms", skew_scale * 1e3)}</text>
                    <polyline class="skew-line" points=skew_pts.join(" ") fill="none" stroke="#c0392b" stroke-width="1.5" />
                </svg>
            }
        })
    };

    let table = move || {
        tick.get();
        lab.with_value(|l| {
            l.node_stats()
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let status = s.status().unwrap_or("–");
                    let opt = |v: Option<f64>, k: f64, u: &str| {
                        v.map_or("–".to_owned(), |v| format!("{:.3} {u}", v * k))
                    };
                    view! {
                        <tr>
                            <td style=format!("color:{}", color(i))>{node_name(i as NodeId)}</td>
                            <td>{format!("{:+.3} ms", s.offset * 1e3)}</td>
                            <td>{format!("{:.3} ms", s.rms_correction * 1e3)}</td>
                            <td>{opt(s.frequency_ppm, 1.0, "ppm")}</td>
                            <td>{format!("{:+.1} ppm", s.true_frequency_ppm)}</td>
                            <td>{opt(s.rtt, 1e3, "ms")}</td>
                            <td>{opt(s.dispersion, 1e3, "ms")}</td>
                            <td class=format!("status {status}")>{status}</td>
                            <td>{s.syncs}</td>
                            <td>{s.backward_steps}</td>
                            <td>{format!("{:.2} ms", s.epsilon_ms)}</td>
                            <td class="mono">{s.hlc.map_or("–".to_owned(), |h| h.to_string())}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };

    let log = move || {
        tick.get();
        lab.with_value(|l| {
            let events = l.events();
            events[events.len().saturating_sub(6)..]
                .iter()
                .rev()
                .map(|e| {
                    let text = e.describe().join("\n");
                    view! { <pre class="event">{format!("[T={:.3}s] {text}", e.at.as_secs_f64())}</pre> }
                })
                .collect_view()
        })
    };

    view! {
        <section class="page drift">
            <h1>"Clock drift lab"</h1>
            <p class="hint">
                "Every node has a quartz clock that runs a little fast or slow (ppm). Pick an "
                "algorithm and watch it pull the clocks together — or fail to. The same scenario "
                "runs headless with " <code>"chronoscope drift"</code> "."
            </p>
            <div class="card controls">
                <label>
                    "Nodes "
                    <input
                        type="number" min="2" max="16" class="nodes"
                        prop:value=move || settings.with(|s| s.drifts.len()).to_string()
                        on:change=move |ev| set_nodes(event_target_value(&ev).parse().unwrap_or(4))
                    />
                </label>
                <label>
                    " Algorithm "
                    <select
                        class="algorithm"
                        on:change=move |ev| {
                            let Some(a) = SyncAlgorithm::parse(&event_target_value(&ev)) else { return };
                            settings.update(|s| s.sync = a);
                            with_lab(&|l| l.set_sync(a).map_err(|e| e.to_string()));
                        }
                    >
                        {SyncAlgorithm::ALL
                            .iter()
                            .map(|a| {
                                let a = *a;
                                view! {
                                    <option value=a.name() selected=move || settings.with(|s| s.sync == a)>
                                        {a.name()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    " Interval "
                    <input
                        type="number" min="1" max="3600" class="interval"
                        prop:value=move || settings.with(|s| s.interval).to_string()
                        on:change=move |ev| {
                            let v: f64 = event_target_value(&ev).parse().unwrap_or(20.0);
                            let v = v.clamp(1.0, 3600.0);
                            settings.update(|s| s.interval = v);
                            with_lab(&|l| l.set_interval(Duration::from_secs_f64(v)).map_err(|e| e.to_string()));
                        }
                    />
                    " s"
                </label>
                <label>
                    " Adjust "
                    <select on:change=move |ev| {
                        let step = event_target_value(&ev) == "step";
                        settings.update(|s| s.step = step);
                        with_lab(&|l| {
                            l.set_adjust(if step { AdjustPolicy::Step } else { AdjustPolicy::SLEW });
                            Ok(())
                        });
                    }>
                        <option value="slew">"slew (≤500 ppm)"</option>
                        <option value="step">"step"</option>
                    </select>
                </label>
                <label>
                    " Speed "
                    <select class="speed" on:change=move |ev| {
                        let v: f64 = event_target_value(&ev).parse().unwrap_or(10.0);
                        settings.update(|s| s.speed = v);
                        with_lab(&|l| l.set_sample_every(sample_period(v)).map_err(|e| e.to_string()));
                    }>
                        {[1.0, 10.0, 100.0, 1000.0]
                            .into_iter()
                            .map(|v| view! {
                                <option value=v.to_string() selected=move || settings.with(|s| s.speed == v)>
                                    {format!("{v}×")}
                                </option>
                            })
                            .collect_view()}
                    </select>
                </label>
                <button class="pause" on:click=move |_| paused.update(|p| *p = !*p)>
                    {move || if paused.get() { "▶ run" } else { "⏸ pause" }}
                </button>
                <button
                    class="step"
                    on:click=move |_| {
                        paused.set(true);
                        lab.update_value(|l| {
                            l.step();
                        });
                        refresh();
                    }
                >
                    "step"
                </button>
                <button on:click=move |_| rebuild()>"reset"</button>
                <button
                    class="open-trace"
                    title=format!(
                        "the sync messages as a space-time diagram (the first {TRACE_CAP} sends and steps since reset)"
                    )
                    on:click=move |_| lab.with_value(|l| open_in_trace_view(l.trace()))
                >
                    "Open trace"
                </button>
                <span class="error">{move || error.get()}</span>
            </div>
            <div class="drift-grid">
                <div class="card">
                    {chart}
                    <table class="nodes-table">
                        <thead>
                            <tr><th>"Node"</th><th>"Drift"</th><th>"Latency"</th><th>"Faults"</th></tr>
                        </thead>
                        <tbody>{node_rows}</tbody>
                    </table>
                </div>
                <div class="card">
                    <h3>"Sources (chrony-like)"</h3>
                    <table class="chrony">
                        <thead>
                            <tr>
                                <th>"Node"</th><th>"Offset"</th><th>"RMS corr"</th><th>"Freq est"</th>
                                <th>"Freq true"</th><th>"RTT"</th><th>"Disp"</th><th>"Status"</th>
                                <th>"Syncs"</th><th>"Back"</th><th>"TT ε"</th><th>"HLC"</th>
                            </tr>
                        </thead>
                        <tbody>{table}</tbody>
                    </table>
                    <h3>"Sync events"</h3>
                    <div class="events">{log}</div>
                </div>
            </div>
            <RelayProbe />
        </section>
    }
}

/// The real network: this tab's clock against the relay's, by NTP's four timestamps over the
/// WebSocket, with extra delay added on the way out and/or back to show the asymmetry bias.
#[component]
fn RelayProbe() -> impl IntoView {
    let relay = use_context::<Relay>();
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
