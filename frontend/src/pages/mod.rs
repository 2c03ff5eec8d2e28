//! One module per page of the app.

pub mod drift;
pub mod home;
