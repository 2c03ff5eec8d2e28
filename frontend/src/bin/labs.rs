//! The labs bundle (see the crate docs): runs when the shell imports it, and mounts the lab
//! pages into the shell's `#lab-root`.

fn main() {
    console_error_panic_hook::set_once();
    chronoscope_web::labs_app::mount();
}
