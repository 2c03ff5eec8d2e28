//! The lab frame: what every simulated lab's page stands on.
//!
//! A page makes a [`Run`] from its lab's [`LabSpec`] (the lab itself lives in `shared`,
//! implementing [`chronoscope::labs::Lab`]) and wraps its own views in [`LabFrame`], which
//! adds, the same on every lab: the controls (parameters, seed, speed including "as fast as
//! possible", play / pause / single step / reset, run to a time, the simulated time, "open in
//! the space-time view"), the claim-and-check panel, and the downloads (CSV / JSON of every
//! table, the trace as a ShiViz log; each [`Chart`] downloads as SVG).
//!
//! The parameters live in the URL (`#/lamport?exp=4&seed=7`, see [`url`]): a reload rebuilds
//! the same run; every change the user makes is a new history entry, so the back button walks
//! back through them. See ARCHITECTURE.md, "Putting a lab on the frame".

mod chart;
mod claims;
mod controls;
mod download;
mod room;
mod table;
pub mod url;

use std::any::Any;
use std::time::Duration;

use chronoscope::labs::{Lab, LabSpec, Params};
use chronoscope::sim::SimTime;
use leptos::prelude::*;

pub use chart::Chart;
#[allow(unused_imports)] // for the multi-tab labs as they land
pub use room::lab_room;
pub use table::DataTable;

use controls::Controls;
use download::Downloads;

/// Wall-clock period of the play loop.
const FRAME: Duration = Duration::from_millis(100);
/// "As fast as possible": the wall-clock budget per frame, ms (the rest keeps the page live).
const MAX_BUDGET_MS: f64 = 40.0;

/// How fast a run plays, in simulated seconds per wall-clock second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// This many simulated seconds per second.
    Times(f64),
    /// As many events as the frame budget allows.
    Max,
}

impl Speed {
    /// The speeds offered.
    pub const ALL: [Speed; 7] = [
        Speed::Times(0.1),
        Speed::Times(1.0),
        Speed::Times(5.0),
        Speed::Times(10.0),
        Speed::Times(100.0),
        Speed::Times(1000.0),
        Speed::Max,
    ];

    fn key(self) -> String {
        match self {
            Speed::Times(x) => format!("{x}"),
            Speed::Max => "max".to_owned(),
        }
    }

    fn label(self) -> String {
        match self {
            Speed::Times(x) => format!("{x}×"),
            Speed::Max => "as fast as possible".to_owned(),
        }
    }

    fn parse(s: &str) -> Speed {
        Speed::ALL
            .into_iter()
            .find(|v| v.key() == s)
            .unwrap_or(Speed::Times(1.0))
    }
}

fn now_ms() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// A page's handle on its lab run: `Copy`, so views capture it freely. The lab is rebuilt
/// from the URL's parameters whenever they change.
#[derive(Clone, Copy)]
pub struct Run {
    spec: &'static LabSpec,
    lab: StoredValue<Option<Box<dyn Lab>>, LocalStorage>,
    /// Bumped whenever the lab changes: views that read the lab track it.
    pub version: RwSignal<u64>,
    /// The run's canonical parameters (what the URL carries).
    pub params: RwSignal<Params>,
    /// Every parameter's value in force, for the controls.
    pub settings: RwSignal<Params>,
    /// Whether the play loop advances the run.
    pub playing: RwSignal<bool>,
    /// How fast it plays.
    pub speed: RwSignal<Speed>,
    /// The last parameter problem, in one line (empty when none).
    pub error: RwSignal<String>,
    /// What the last single step did.
    pub last: RwSignal<String>,
}

impl Run {
    /// Builds the lab from the URL's parameters and starts playing it at `speed`: the page
    /// runs on open. The play loop and the URL listener live as long as the calling component.
    pub fn new(spec: &'static LabSpec, speed: Speed) -> Run {
        let run = Run {
            spec,
            lab: StoredValue::new_local(None),
            version: RwSignal::new(0),
            params: RwSignal::new(Params::new()),
            settings: RwSignal::new(Params::new()),
            playing: RwSignal::new(true),
            speed: RwSignal::new(speed),
            error: RwSignal::new(String::new()),
            last: RwSignal::new(String::new()),
        };
        run.load(&url::params_in_url(), None);
        url::replace(spec.slug, &run.params.get_untracked());

        if let Ok(handle) = set_interval_with_handle(move || run.tick(), FRAME) {
            on_cleanup(move || handle.clear());
        }
        // The back and forward buttons (and edited links) change the URL: follow it.
        let listener = window_event_listener(leptos::ev::hashchange, move |_| {
            if url::slug_in_url() != spec.slug {
                return;
            }
            let wanted = url::params_in_url();
            if wanted != run.params.get_untracked() {
                run.load(&wanted, None);
                url::replace(spec.slug, &run.params.get_untracked());
            }
        });
        on_cleanup(move || listener.remove());
        run
    }

    /// The lab's slug.
    pub fn slug(&self) -> &'static str {
        self.spec.slug
    }

    /// The lab's spec.
    pub fn spec(&self) -> &'static LabSpec {
        self.spec
    }

    /// Builds the lab from `params`; on success the run restarts, fast-forwarded to `at`
    /// when given. A refusal keeps the old run and shows the error.
    fn load(&self, params: &Params, at: Option<SimTime>) {
        match self.spec.build(params) {
            Ok(mut lab) => {
                if let Some(t) = at {
                    lab.run_until(t);
                }
                self.error.set(String::new());
                self.params.set(lab.params());
                self.settings.set(lab.settings());
                self.lab.set_value(Some(lab));
                self.last.set(String::new());
                self.bump();
            }
            Err(e) => {
                self.error.set(e.to_string());
                if self.lab.with_value(Option::is_none) {
                    // A link that cannot be built at all: the lab's defaults, with the error.
                    let seed = params.get("seed").unwrap_or("1").to_owned();
                    let mut fallback = Params::new();
                    fallback.set("seed", &seed);
                    if let Ok(lab) = self
                        .spec
                        .build(&fallback)
                        .or_else(|_| self.spec.build(&Params::new()))
                    {
                        self.params.set(lab.params());
                        self.settings.set(lab.settings());
                        self.lab.set_value(Some(lab));
                        self.bump();
                    }
                }
            }
        }
    }

    fn bump(&self) {
        self.version.update(|v| *v += 1);
    }

    /// Reads the lab as `&dyn Lab` (tracking [`Run::version`]).
    pub fn with_lab<R>(&self, f: impl FnOnce(&dyn Lab) -> R) -> Option<R> {
        self.version.track();
        self.lab.try_with_value(|l| l.as_deref().map(f)).flatten()
    }

    /// Reads the lab as its own type `L` (tracking [`Run::version`]); `None` if the frame
    /// holds another type.
    pub fn with<L: Lab, R>(&self, f: impl FnOnce(&L) -> R) -> Option<R> {
        self.with_lab(|l| (l as &dyn Any).downcast_ref::<L>().map(f))
            .flatten()
    }

    fn with_mut<R>(&self, f: impl FnOnce(&mut dyn Lab) -> R) -> Option<R> {
        let r = self
            .lab
            .try_update_value(|l| l.as_deref_mut().map(f))
            .flatten();
        self.bump();
        r
    }

    /// The user changed parameter `key` to `value`: a new history entry, and the run rebuilt
    /// with it, fast-forwarded to the same simulated time.
    pub fn change(&self, key: &str, value: &str) {
        let next = self
            .params
            .get_untracked()
            .with_change(self.spec.params, key, value);
        self.set_params(next);
    }

    /// Replaces the parameters (a new history entry), keeping the simulated time.
    pub fn set_params(&self, next: Params) {
        let at = self.with_lab(|l| l.now());
        self.load(&next, at);
        if self.error.with_untracked(String::is_empty) {
            url::push(self.spec.slug, &self.params.get_untracked());
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.with_lab(|l| l.now()).unwrap_or(SimTime::ZERO)
    }

    /// Pauses and handles exactly one event.
    pub fn step(&self) {
        self.playing.set(false);
        let last = self.with_mut(|l| {
            l.step()?;
            l.last_event()
        });
        self.last.set(
            last.flatten()
                .unwrap_or_else(|| "the run is over".to_owned()),
        );
    }

    /// Starts the run again from time 0 with the same parameters.
    pub fn reset(&self) {
        self.load(&self.params.get_untracked(), None);
    }

    /// Runs to simulated time `t` (rebuilding first when `t` is in the past).
    pub fn run_to(&self, t: SimTime) {
        if t < self.now() {
            self.load(&self.params.get_untracked(), None);
        }
        self.with_mut(|l| l.run_until(t));
    }

    /// Whether a run with an end has reached it.
    pub fn finished(&self) -> bool {
        self.with_lab(|l| l.end().is_some_and(|e| l.now() >= e))
            .unwrap_or(false)
    }

    fn tick(&self) {
        if !self.playing.get_untracked() {
            return;
        }
        let speed = self.speed.get_untracked();
        let done = self.with_mut(|l| {
            match speed {
                Speed::Times(x) => {
                    let until = l.now() + Duration::from_secs_f64(x * FRAME.as_secs_f64());
                    l.run_until(until);
                }
                Speed::Max => {
                    let start = now_ms();
                    'budget: while now_ms() - start < MAX_BUDGET_MS {
                        for _ in 0..512 {
                            if l.step().is_none() {
                                break 'budget;
                            }
                        }
                    }
                }
            }
            l.end().is_some_and(|e| l.now() >= e)
        });
        if done == Some(true) {
            self.playing.set(false);
        }
    }
}

/// The frame around a lab page: its title and introduction, the controls, the claims with
/// this run's verdicts, the page's own views (`children`), and the downloads.
#[component]
pub fn LabFrame(
    /// The run the page made with [`Run::new`].
    run: Run,
    /// The page's title.
    title: &'static str,
    /// What the lab shows, in a few sentences.
    intro: &'static str,
    /// The page's own views (charts, tables, diagrams).
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("page lab {}", run.slug()) data-lab=run.slug()>
            <h1>{title}</h1>
            <p class="hint intro">{intro}</p>
            <Controls run=run />
            <claims::Claims run=run />
            {children()}
            <Downloads run=run />
        </section>
    }
}
