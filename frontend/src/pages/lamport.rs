//! The Lamport clock lab on the lab frame: the lab notebook's machines, simulated in the tab
//! by `chronoscope::labs::lamport` and played as it runs, with every machine's clock and queue.

use chronoscope::labs::lamport::{self, clock_chart, queue_chart, LamportLab as Lab};
use leptos::prelude::*;

use crate::frame::{Chart, DataTable, LabFrame, Run, Speed};

/// The Lamport lab page.
#[component]
pub fn LamportLab() -> impl IntoView {
    let run = Run::new(&lamport::SPEC, Speed::Times(5.0));
    let table = Signal::derive(move || {
        run.with(|l: &Lab| l.machines_table())
            .unwrap_or_else(|| chronoscope::labs::Table::new("machines", "", &[]))
    });
    let clocks = Signal::derive(move || {
        run.with(|l: &Lab| clock_chart(&l.config().rates, &l.logs()))
            .unwrap_or_else(|| clock_chart::<&[_]>(&[], &[]))
    });
    let queues = Signal::derive(move || {
        run.with(|l: &Lab| queue_chart(&l.config().rates, &l.logs()))
            .unwrap_or_else(|| queue_chart::<&[_]>(&[], &[]))
    });
    view! {
        <LabFrame
            run=run
            title="Lamport clock lab"
            intro="Machines tick at 1–6 per second. On a tick a machine takes one message from its \
                   queue and sets its clock to max(local, received) + 1; with an empty queue it \
                   does an internal event or sends its clock to one or all others. Slow machines \
                   that receive faster than they tick build queues and fall behind. The same run \
                   prints headless with chronoscope lamport --experiment 4."
        >
            <div class="card">
                <h2>"Machines"</h2>
                <DataTable
                    table=table
                    headings=&["machine", "rate/s", "clock", "internal", "sends", "receives", "largest jump", "at s", "queue max", "queue now"]
                />
            </div>
            <div class="charts">
                <Chart run=run chart=clocks />
                <Chart run=run chart=queues />
            </div>
        </LabFrame>
    }
}
