//! The shell bundle (see the crate docs): mounts the app shell on the page's body.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(chronoscope_web::app::App);
}
