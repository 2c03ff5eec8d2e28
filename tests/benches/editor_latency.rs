//! Keystroke-to-other-tab latency of the collaborative editor, in real headless Chromium on
//! loopback at zero link delay: the whole shipped path — the `input` event, the session's
//! batch and flush, the tab's WebSocket, the relay (durable store, then forward), the other
//! tab's decode, causal delivery, CRDT apply and text-area update.
//!
//! Two tabs (two Chromium processes) in one room. Tab A types one character per keystroke
//! through the browser's own editing command (`insertText`, which fires `input` as a key
//! does), timed in the page just before; tab B records, in the page, the moment its text
//! area's value is set to a text that holds it. Both stamps are `performance.timeOrigin +
//! performance.now()` on the same machine, so WebDriver round trips are outside the
//! measurement. Two rhythms: a typist (a key every 60 ms: the line is idle between keys) and
//! a burst (a key every 4 ms: keys arrive while the previous message is in flight, so they
//! batch until its ack). Needs `make dist` and Debian's chromium + chromium-driver; run with
//! `cargo bench -p chronoscope-e2e --bench editor_latency`.

use std::time::Duration;

use chronoscope_e2e::{Browser, Tab, TestServer};

const KEYS: usize = 300;

/// Installs B's recorder: every value set on the text area is logged with its time.
const RECORD: &str = r#"
const a = document.querySelector('#editor-text');
const desc = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value');
window.__seen = [];
Object.defineProperty(a, 'value', {
  get() { return desc.get.call(this); },
  set(v) { desc.set.call(this, v); window.__seen.push([performance.timeOrigin + performance.now(), v.length]); },
});
"#;

/// A types `n` keys, one every `gap` ms, logging (time, length after) per key; resolves when
/// done.
const TYPE: &str = r#"
const [n, gap, done] = arguments;
const a = document.querySelector('#editor-text');
a.focus();
window.__typed = [];
let i = 0;
const tick = () => {
  a.setSelectionRange(a.value.length, a.value.length);
  const t = performance.timeOrigin + performance.now();
  document.execCommand('insertText', false, String.fromCharCode(97 + (i % 26)));
  window.__typed.push([t, a.value.length]);
  i += 1;
  if (i < n) { setTimeout(tick, gap); } else { done(null); }
};
tick();
"#;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn open(browser: &mut Browser, url: &str) -> Tab {
    let tab = browser.open(url).await;
    tab.wait_for_css(".conn[data-status=connected]").await;
    tab.wait_for_css("#editor-text:not([readonly])").await;
    tab
}

/// One run: A types `KEYS` keys `gap_ms` apart; returns B's latency per key, ms, sorted.
async fn run(a: &Tab, b: &Tab, gap_ms: u64) -> Vec<f64> {
    b.eval("window.__seen = [];", vec![]).await;
    let start_len = a
        .eval(
            "return document.querySelector('#editor-text').value.length",
            vec![],
        )
        .await
        .as_u64()
        .unwrap();
    a.client
        .execute_async(TYPE, vec![KEYS.into(), gap_ms.into()])
        .await
        .expect("typing script");
    let want = start_len as usize + KEYS;
    let seen = loop {
        let seen = b.eval("return window.__seen", vec![]).await;
        let seen: Vec<(f64, usize)> = serde_json::from_value(seen).unwrap();
        if seen.last().is_some_and(|&(_, len)| len >= want) {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let typed: Vec<(f64, usize)> =
        serde_json::from_value(a.eval("return window.__typed", vec![]).await).unwrap();
    let mut lat: Vec<f64> = typed
        .iter()
        .map(|&(t, len)| {
            let (at, _) = seen
                .iter()
                .find(|&&(_, l)| l >= len)
                .expect("every key arrives");
            at - t
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    lat
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let url = server.url(&format!(
        "/?room=latency-bench-{}#/editor",
        std::process::id()
    ));
    let a = open(&mut browser, &url).await;
    let b = open(&mut browser, &url).await;
    b.eval(RECORD, vec![]).await;
    // Warm-up: the first messages pay for JIT and connection warm-up.
    run(&a, &b, 20).await;
    println!(
        "keystroke → other tab, real Chromium, loopback, zero link delay, {KEYS} keys per row"
    );
    println!("| rhythm | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, gap) in [
        ("typist, a key every 60 ms", 60),
        ("burst, a key every 4 ms", 4),
    ] {
        let lat = run(&a, &b, gap).await;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
    for tab in [a, b] {
        tab.close().await;
    }
    server.stop().await;
}
