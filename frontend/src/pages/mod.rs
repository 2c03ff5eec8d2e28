//! One module per page of the app, each in one bundle (see [`crate`] and [`crate::registry`]).

// The shell: the first load.
#[cfg(feature = "shell")]
pub mod editor;
#[cfg(feature = "shell")]
pub mod home;

// The labs bundle: every lab and the space-time view. New labs go here, with
// `#[cfg(feature = "labs")]`, and `page: lab!(…)` in the registry.
#[cfg(feature = "labs")]
pub mod drift;
#[cfg(feature = "labs")]
pub mod lamport;
#[cfg(feature = "labs")]
pub mod trace;
