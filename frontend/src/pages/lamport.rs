//! The Lamport clock lab: the lab notebook's machines, simulated in the browser, played back
//! with live charts of every machine's logical clock and queue.

use chronoscope::labs::lamport::{
    analyse, observations, plot_clocks, plot_queues, simulate, Experiment, LabConfig, LabRun,
    LogEntry,
};
use leptos::prelude::*;

use super::trace::open_in_trace_view;

/// Playback frame interval, ms.
const FRAME_MS: u64 = 100;

fn visible(run: &LabRun, t: f64) -> Vec<Vec<LogEntry>> {
    run.logs
        .iter()
        .map(|l| {
            l.iter()
                .take_while(|e| e.time_s <= t + 1e-9)
                .cloned()
                .collect()
        })
        .collect()
}

/// The Lamport lab page.
#[component]
pub fn LamportLab() -> impl IntoView {
    let preset = RwSignal::new(4u32);
    let rates = RwSignal::new(vec![1u32, 3, 6]);
    let internal = RwSignal::new(0.7f64);
    let duration = RwSignal::new(60.0f64);
    let seed = RwSignal::new(1u64);
    let run: RwSignal<Option<LabRun>> = RwSignal::new(None);
    let error = RwSignal::new(String::new());
    let cursor = RwSignal::new(0.0f64);
    let playing = RwSignal::new(false);
    let speed = RwSignal::new(5.0f64);

    let apply_preset = move |n: u32| {
        if let Ok(e) = Experiment::get(n) {
            let c = e.config(duration.get_untracked(), seed.get_untracked());
            rates.set(c.rates);
            internal.set(c.internal_probability);
        }
    };
    let start = move || {
        let config = LabConfig {
            rates: rates.get_untracked(),
            internal_probability: internal.get_untracked(),
            duration_s: duration.get_untracked(),
            network_delay_ms: 0.5,
            seed: seed.get_untracked(),
        };
        match simulate(config) {
            Ok(r) => {
                error.set(String::new());
                run.set(Some(r));
                cursor.set(0.0);
                playing.set(true);
            }
            Err(e) => error.set(e.to_string()),
        }
    };

    if let Ok(handle) = set_interval_with_handle(
        move || {
            if !playing.get_untracked() {
                return;
            }
            let end = run.with_untracked(|r| r.as_ref().map_or(0.0, |r| r.config.duration_s));
            let next = cursor.get_untracked() + speed.get_untracked() * FRAME_MS as f64 / 1000.0;
            if next >= end {
                cursor.set(end);
                playing.set(false);
            } else {
                cursor.set(next);
            }
        },
        std::time::Duration::from_millis(FRAME_MS),
    ) {
        on_cleanup(move || handle.clear());
    }

    let step = move || {
        playing.set(false);
        let t = cursor.get_untracked();
        let next = run.with_untracked(|r| {
            r.as_ref().and_then(|r| {
                r.logs
                    .iter()
                    .flatten()
                    .map(|e| e.time_s)
                    .filter(|&s| s > t + 1e-9)
                    .min_by(f64::total_cmp)
            })
        });
        if let Some(n) = next {
            cursor.set(n);
        }
    };

    let shown = Memo::new(move |_| {
        let t = cursor.get();
        run.with(|r| r.as_ref().map(|r| (r.config.rates.clone(), visible(r, t))))
    });
    let clocks_svg = move || {
        shown.with(|s| {
            s.as_ref()
                .map(|(r, l)| plot_clocks(r, l))
                .unwrap_or_default()
        })
    };
    let queues_svg = move || {
        shown.with(|s| {
            s.as_ref()
                .map(|(r, l)| plot_queues(r, l))
                .unwrap_or_default()
        })
    };
    let table = move || {
        shown.with(|s| {
            s.as_ref().map(|(rates, logs)| {
                let a = analyse(rates, logs);
                a.machines
                    .into_iter()
                    .map(|m| {
                        view! {
                            <tr>
                                <td>{format!("M{}", m.machine)}</td>
                                <td>{m.rate}</td>
                                <td>{m.final_clock}</td>
                                <td>{m.internal}</td>
                                <td>{m.sends}</td>
                                <td>{m.receives}</td>
                                <td>{format!("{} @ {:.1} s", m.jump_max.0, m.jump_max.1)}</td>
                                <td>{m.queue_max}</td>
                                <td class="queue-now">{m.queue_final}</td>
                            </tr>
                        }
                    })
                    .collect_view()
            })
        })
    };
    let findings = move || {
        run.with(|r| {
            r.as_ref().map(|r| {
                let a = analyse(&r.config.rates, &r.logs);
                observations(&r.config, &a)
                    .into_iter()
                    .map(|o| view! { <li>{o}</li> })
                    .collect_view()
            })
        })
    };
    let open_trace = move |_| {
        run.with_untracked(|r| {
            if let Some(r) = r {
                open_in_trace_view(&r.trace);
            }
        });
    };

    view! {
        <section class="page lamport">
            <h1>"Lamport clock lab"</h1>
            <p class="hint">
                "Machines tick at 1–6 per second. On a tick a machine takes one message from its "
                "queue and sets its clock to max(local, received) + 1; with an empty queue it does "
                "an internal event or sends its clock to one or all others. Slow machines that "
                "receive faster than they tick build queues and fall behind."
            </p>
            <div class="card controls">
                <label>
                    "Experiment "
                    <select
                        id="lamport-preset"
                        on:change=move |ev| {
                            let n: u32 = event_target_value(&ev).parse().unwrap_or(1);
                            preset.set(n);
                            apply_preset(n);
                        }
                    >
                        {Experiment::ALL
                            .iter()
                            .map(|e| {
                                let n = e.number;
                                view! {
                                    <option value=n.to_string() selected=move || preset.get() == n>
                                        {format!("{}: {}", n, e.title)}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                {(0..3)
                    .map(|i| {
                        view! {
                            <label>
                                {format!(" M{i} rate ")}
                                <input
                                    type="range"
                                    min="1"
                                    max="6"
                                    prop:value=move || rates.with(|r| r.get(i).copied().unwrap_or(1)).to_string()
                                    on:input=move |ev| {
                                        let v: u32 = event_target_value(&ev).parse().unwrap_or(1);
                                        rates.update(|r| if let Some(x) = r.get_mut(i) { *x = v });
                                    }
                                />
                                {move || rates.with(|r| r.get(i).copied().unwrap_or(1))}
                                "/s"
                            </label>
                        }
                    })
                    .collect_view()}
                <label>
                    " internal "
                    <input
                        type="range"
                        min="0"
                        max="100"
                        prop:value=move || format!("{:.0}", internal.get() * 100.0)
                        on:input=move |ev| {
                            internal.set(event_target_value(&ev).parse::<f64>().unwrap_or(70.0) / 100.0)
                        }
                    />
                    {move || format!("{:.0} %", internal.get() * 100.0)}
                </label>
                <label>
                    " duration (s) "
                    <input
                        type="number"
                        min="1"
                        max="600"
                        prop:value=move || duration.get().to_string()
                        on:change=move |ev| duration.set(event_target_value(&ev).parse().unwrap_or(60.0))
                    />
                </label>
                <label>
                    " seed "
                    <input
                        type="number"
                        prop:value=move || seed.get().to_string()
                        on:change=move |ev| seed.set(event_target_value(&ev).parse().unwrap_or(1))
                    />
                </label>
                <div class="buttons">
                    <button id="lamport-run" on:click=move |_| start()>"Run"</button>
                    <button on:click=move |_| playing.update(|p| *p = !*p)>
                        {move || if playing.get() { "Pause" } else { "Play" }}
                    </button>
                    <button on:click=move |_| step()>"Step"</button>
                    <label>
                        " speed "
                        <input
                            type="range"
                            min="1"
                            max="60"
                            prop:value=move || speed.get().to_string()
                            on:input=move |ev| speed.set(event_target_value(&ev).parse().unwrap_or(5.0))
                        />
                        {move || format!("{}× ", speed.get())}
                    </label>
                    <span class="mono" id="lamport-time">{move || format!("t = {:.2} s", cursor.get())}</span>
                    <button on:click=open_trace disabled=move || run.with(Option::is_none)>
                        "Open trace in the space-time view"
                    </button>
                </div>
                <p class="error">{move || error.get()}</p>
            </div>
            <div class="card">
                <table id="lamport-table">
                    <tr>
                        <th>"machine"</th><th>"rate/s"</th><th>"clock"</th><th>"internal"</th>
                        <th>"sends"</th><th>"receives"</th><th>"largest jump"</th>
                        <th>"queue max"</th><th>"queue now"</th>
                    </tr>
                    {table}
                </table>
            </div>
            <div class="charts">
                <div class="card" inner_html=clocks_svg></div>
                <div class="card" inner_html=queues_svg></div>
            </div>
            <div class="card">
                <h2>"The notebook's observations, with this run's numbers (whole run)"</h2>
                <ul id="lamport-findings">{findings}</ul>
            </div>
        </section>
    }
}
