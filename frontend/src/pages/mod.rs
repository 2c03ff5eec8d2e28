//! One module per page of the app.

pub mod drift;
pub mod editor;
pub mod home;
pub mod lamport;
pub mod trace;
