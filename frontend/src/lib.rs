//! Chronoscope's browser front end: a Leptos CSR app in two wasm bundles, built by trunk and
//! served by the relay.
//!
//! - **The shell** (`chronoscope-web`, `src/main.rs`, feature `shell`) is the first load: the
//!   header with the navigation and the connection indicator, the overview and the
//!   collaborative editor.
//! - **The labs** (`chronoscope-labs`, `src/bin/labs.rs`, feature `labs`): every lab page and
//!   the space-time view with its trace importers. The shell loads it (an ES module, dynamic
//!   `import()`) the first time a lab is opened; it mounts its own router into the shell's
//!   `#lab-root` and follows the URL fragment from then on.
//!
//! Trunk 0.21 cannot split one wasm, but it builds a second binary of the same crate as a
//! `data-type="worker"` link with `data-bindgen-target="web"`: an ES module with an `init`,
//! which the main thread can import as well as a worker can. The two bundles are separate wasm
//! instances (two Leptos runtimes): they share only the page, so pages hand things over through
//! the URL and `localStorage` ([`route`]). One [`registry`] lists every page for both, and
//! says which bundle each page is in.
//!
//! The default features build both bundles' code, so `cargo clippy` and `cargo test` see every
//! page; `frontend/index.html` builds each bundle with its own feature only.

#[cfg(feature = "shell")]
pub mod app;
#[cfg(feature = "shell")]
pub mod components;
pub mod connection;
#[cfg(feature = "labs")]
pub mod frame;
#[cfg(feature = "labs")]
pub mod labs_app;
pub mod pages;
pub mod registry;
pub mod route;
