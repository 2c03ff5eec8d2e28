//! A room of a lab's own for labs that span tabs (chat, snapshots, counters): one line in the
//! page, `let relay = lab_room("chat");`.

use leptos::prelude::*;

use crate::connection::Relay;
use crate::route::room_from_url;

/// Connects this tab to the lab's own room, `{room}-{slug}` (the page's `?room=`, default
/// `lobby`), for as long as the calling component lives: its relay closes on cleanup, so
/// leaving the page leaves the room. The shell's relay (the editor's room) is not touched.
#[allow(dead_code)] // the multi-tab labs (chat, snapshot, counters) call it
pub fn lab_room(slug: &str) -> Relay {
    let base = room_from_url();
    let keep = 64usize.saturating_sub(slug.len() + 1);
    let name = format!("{}-{slug}", &base[..base.len().min(keep)]);
    let relay = Relay::connect(&name);
    on_cleanup(move || relay.close());
    relay
}
