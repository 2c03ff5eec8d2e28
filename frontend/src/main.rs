//! Chronoscope's browser front end: a Leptos CSR app, built by trunk, served by the relay.

mod app;
mod components;
mod connection;
mod frame;
mod pages;
mod registry;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
