//! The Lamport lab's charts: every machine's logical clock and queue length over time, one
//! step line per machine in its node colour, drawn at every event (not sampled).

use super::machine::LogEntry;
use crate::labs::chart::{LineChart, Series};

/// One chart with a step line per machine, each over its own event times from 0.
fn per_machine_chart<L: AsRef<[LogEntry]>>(
    name: &str,
    title: &str,
    y_label: &str,
    rates: &[u32],
    logs: &[L],
    value: fn(&LogEntry) -> f64,
) -> LineChart {
    let mut chart = LineChart::new(name, title, "time_s", y_label);
    chart.step = true;
    chart.series = logs
        .iter()
        .enumerate()
        .map(|(m, log)| {
            let points = std::iter::once((0.0, 0.0))
                .chain(log.as_ref().iter().map(|e| (e.time_s, value(e))))
                .collect();
            Series::node(
                format!("M{m} ({}/s)", rates.get(m).copied().unwrap_or(0)),
                m,
                points,
            )
        })
        .collect();
    chart
}

/// Every machine's logical clock over time.
pub fn clock_chart<L: AsRef<[LogEntry]>>(rates: &[u32], logs: &[L]) -> LineChart {
    per_machine_chart(
        "clocks",
        "Logical clock over time",
        "logical clock",
        rates,
        logs,
        |e| e.clock as f64,
    )
}

/// Every machine's queue length over time.
pub fn queue_chart<L: AsRef<[LogEntry]>>(rates: &[u32], logs: &[L]) -> LineChart {
    per_machine_chart(
        "queues",
        "Queue length over time",
        "messages queued",
        rates,
        logs,
        |e| e.queue as f64,
    )
}

/// SVG chart of every machine's logical clock over time.
pub fn plot_clocks<L: AsRef<[LogEntry]>>(rates: &[u32], logs: &[L]) -> String {
    clock_chart(rates, logs).svg()
}

/// SVG chart of every machine's queue length over time.
pub fn plot_queues<L: AsRef<[LogEntry]>>(rates: &[u32], logs: &[L]) -> String {
    queue_chart(rates, logs).svg()
}
