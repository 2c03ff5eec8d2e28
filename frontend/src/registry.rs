//! The lab registry: one table of every page. The router, the navigation and the overview
//! all read it, so a new lab is one entry here (and its page module).
//!
//! Each entry says which bundle its page lives in (see [`crate`]): `shell!(…)` for the first
//! load (the editor), `lab!(…)` for the labs bundle (every lab, the space-time view). A new lab
//! is `page: lab!(pages::mylab::MyLab)` here and `#[cfg(feature = "labs")] pub mod mylab;` in
//! `pages/mod.rs`; the shell then lists it and loads the labs bundle when it is opened.

#[allow(unused_imports)] // `lab!`/`shell!` name pages only in the bundle that has them
use leptos::prelude::*;

#[allow(unused_imports)]
use crate::pages;

/// Where an entry's page is: in this bundle, or in the other one.
pub enum Page {
    /// Compiled into this bundle.
    Here(fn() -> AnyView),
    /// In the shell (built without this page's feature).
    #[allow(dead_code)] // constructed only when a bundle is built alone
    Shell,
    /// In the labs bundle, which the shell loads on the first visit to a lab.
    #[allow(dead_code)] // constructed only when a bundle is built alone
    Labs,
}

/// A page of the labs bundle.
#[cfg(feature = "labs")]
macro_rules! lab {
    ($page:path) => {
        Page::Here(|| $page().into_any())
    };
}
/// A page of the labs bundle.
#[cfg(not(feature = "labs"))]
macro_rules! lab {
    ($page:path) => {
        Page::Labs
    };
}
/// A page of the shell (the first load).
#[cfg(feature = "shell")]
macro_rules! shell {
    ($page:path) => {
        Page::Here(|| $page().into_any())
    };
}
/// A page of the shell (the first load).
#[cfg(not(feature = "shell"))]
macro_rules! shell {
    ($page:path) => {
        Page::Shell
    };
}

/// The groups of the navigation and the overview, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Lamport clocks, vector clocks, causal and total order.
    LogicalTime,
    /// Drifting clocks and their synchronisation, HLC, TrueTime.
    PhysicalTime,
    /// Replicated data: the editor, counters, key-value stores.
    Replication,
    /// Snapshots, leases, Byzantine clocks: what must never happen.
    Safety,
    /// Real network services: NTP, time sync, ledgers.
    Services,
    /// Tools that show any run (the space-time view).
    Tools,
}

impl Group {
    /// Every group, in order.
    pub const ALL: [Group; 6] = [
        Group::LogicalTime,
        Group::PhysicalTime,
        Group::Replication,
        Group::Safety,
        Group::Services,
        Group::Tools,
    ];

    /// The group's heading.
    pub fn label(self) -> &'static str {
        match self {
            Group::LogicalTime => "Logical time",
            Group::PhysicalTime => "Physical time",
            Group::Replication => "Replication",
            Group::Safety => "Safety",
            Group::Services => "Services",
            Group::Tools => "Tools",
        }
    }
}

/// One page of the app.
pub struct LabEntry {
    /// Its path: `#/{slug}`.
    pub slug: &'static str,
    /// Its name in the navigation and the overview.
    pub label: &'static str,
    /// Where it is listed.
    pub group: Group,
    /// The one question it answers, for the overview.
    pub question: &'static str,
    /// A small picture for the overview: an inline SVG (decorative; the question says it).
    pub picture: &'static str,
    /// The page, and the bundle it is in.
    pub page: Page,
}

/// Every page, in navigation order within its group.
pub const LABS: &[LabEntry] = &[
    LabEntry {
        slug: "lamport",
        label: "Lamport clocks",
        group: Group::LogicalTime,
        question: "Why does a slow machine's Lamport clock fall behind, and when does it jump?",
        picture: PICTURE_LAMPORT,
        page: lab!(pages::lamport::LamportLab),
    },
    LabEntry {
        slug: "drift",
        label: "Clock drift",
        group: Group::PhysicalTime,
        question: "How close can Cristian, Berkeley, NTP or a fault-tolerant average keep drifting clocks?",
        picture: PICTURE_DRIFT,
        page: lab!(pages::drift::Drift),
    },
    LabEntry {
        slug: "editor",
        label: "Collaborative editor",
        group: Group::Replication,
        question: "How do tabs that see edits in different orders end with the same text?",
        picture: PICTURE_EDITOR,
        page: shell!(pages::editor::Editor),
    },
    LabEntry {
        slug: "trace",
        label: "Space-time view",
        group: Group::Tools,
        question: "What happened before what? Any run as a space-time diagram.",
        picture: PICTURE_TRACE,
        page: lab!(pages::trace::TraceView),
    },
];

/// The entry for a slug.
pub fn find(slug: &str) -> Option<&'static LabEntry> {
    LABS.iter().find(|e| e.slug == slug)
}

const PICTURE_LAMPORT: &str = r##"<svg viewBox="0 0 120 60" xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><g stroke="currentColor" stroke-width="1.5" opacity=".45"><line x1="8" y1="12" x2="112" y2="12"/><line x1="8" y1="30" x2="112" y2="30"/><line x1="8" y1="48" x2="112" y2="48"/></g><g stroke="#3571c9" stroke-width="2" fill="none"><path d="M20 12 L44 30"/><path d="M58 30 L90 48"/><path d="M70 48 L96 12"/></g><g fill="#d1601a"><circle cx="20" cy="12" r="3"/><circle cx="44" cy="30" r="3"/><circle cx="58" cy="30" r="3"/><circle cx="90" cy="48" r="3"/><circle cx="70" cy="48" r="3"/><circle cx="96" cy="12" r="3"/></g></svg>"##;
const PICTURE_DRIFT: &str = r##"<svg viewBox="0 0 120 60" xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><line x1="6" y1="30" x2="114" y2="30" stroke="currentColor" opacity=".35" stroke-dasharray="3 3"/><path d="M6 30 L40 18 L42 29 L76 17 L78 29 L114 18" stroke="#3571c9" stroke-width="2" fill="none"/><path d="M6 30 L40 42 L42 31 L76 43 L78 31 L114 42" stroke="#d1601a" stroke-width="2" fill="none"/><path d="M6 30 L40 24 L42 30 L76 24 L78 30 L114 25" stroke="#2e8b57" stroke-width="2" fill="none"/></svg>"##;
const PICTURE_EDITOR: &str = r##"<svg viewBox="0 0 120 60" xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><rect x="6" y="8" width="46" height="44" rx="4" fill="none" stroke="#3571c9" stroke-width="2"/><rect x="68" y="8" width="46" height="44" rx="4" fill="none" stroke="#d1601a" stroke-width="2"/><g stroke="currentColor" opacity=".5" stroke-width="2"><line x1="12" y1="20" x2="44" y2="20"/><line x1="12" y1="30" x2="38" y2="30"/><line x1="74" y1="20" x2="106" y2="20"/><line x1="74" y1="30" x2="100" y2="30"/></g><path d="M52 40 L68 40" stroke="#2e8b57" stroke-width="2"/><path d="M68 46 L52 46" stroke="#2e8b57" stroke-width="2"/></svg>"##;
const PICTURE_TRACE: &str = r##"<svg viewBox="0 0 120 60" xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><g stroke="currentColor" opacity=".45" stroke-width="1.5"><line x1="8" y1="14" x2="112" y2="14"/><line x1="8" y1="46" x2="112" y2="46"/></g><g stroke="#7b5fc7" stroke-width="2"><line x1="22" y1="14" x2="52" y2="46"/><line x1="40" y1="46" x2="84" y2="14"/><line x1="70" y1="14" x2="100" y2="46"/></g></svg>"##;
