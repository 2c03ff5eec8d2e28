//! Accessibility and fit of every page, in real headless Chromium at 1280 × 800.
//!
//! - axe-core (npm, pinned in package-lock.json) is injected into the running app and run on
//!   every page the overview links to (so new labs are checked as they are registered), in the
//!   light theme and again with the system setting emulated as dark: no violation of WCAG 2.x
//!   A/AA or of axe's best practices.
//! - No page scrolls sideways, and no card holds a box that does (the chart tables' "numbers"
//!   scroll vertically only).
//! - The keyboard reaches every control of a lab page, and each one shows a visible focus ring.
//!
//! `CHRONOSCOPE_SCREENSHOTS=DIR` also saves a full-page screenshot of every page per theme.
//! Every wait is for a condition; nothing asserts a wall-clock window.

use std::time::Duration;

use chronoscope_e2e::{workspace_root, Browser, Tab, TestServer};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand};

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

/// Emulates the system's colour-scheme setting.
async fn prefer(tab: &Tab, scheme: &str) {
    tab.client
        .issue_cmd(Cdp(serde_json::json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] }
        })))
        .await
        .expect("emulate the colour scheme");
    let dark = tab
        .eval(
            "return matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await;
    assert_eq!(dark, serde_json::Value::Bool(scheme == "dark"), "{scheme}");
}

/// The overview and every page it links to, as `#/slug` fragments.
async fn pages(tab: &Tab) -> Vec<String> {
    tab.wait_for_css(".lab-card a").await;
    let links = tab
        .eval(
            "return [...document.querySelectorAll('.lab-card a')].map(a => a.getAttribute('href'))",
            vec![],
        )
        .await;
    let mut out = vec!["#/".to_owned()];
    out.extend(
        links
            .as_array()
            .expect("links")
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned)),
    );
    assert!(out.len() >= 5, "the overview links every page: {out:?}");
    out
}

/// Shows `hash` and waits until the page has drawn: its heading, and for a lab page its
/// claims and charts.
async fn show(tab: &Tab, hash: &str) {
    tab.eval("location.hash = arguments[0]", vec![hash.into()])
        .await;
    tab.until(&format!("page {hash}"), || async {
        let ready = tab
            .eval(
                "const h = document.querySelector('main h1'); \
                 const lab = document.querySelector('section.lab'); \
                 const slug = location.hash.replace(/^#\\/?/, '').split('?')[0]; \
                 const here = slug === '' ? !!document.querySelector('.home') \
                   : !!document.querySelector(`main section.${slug}, main [data-lab='${slug}']`); \
                 return !!h && here && (!lab || (!!lab.querySelector('#claims li.claim') \
                   && [...lab.querySelectorAll('.chart-svg')].every(c => c.querySelector('svg'))));",
                vec![],
            )
            .await;
        if ready == serde_json::Value::Bool(true) {
            Ok(())
        } else {
            Err(ready)
        }
    })
    .await;
}

/// Runs axe-core on the page; returns its violations in one readable line each.
async fn axe(tab: &Tab, source: &str) -> Vec<String> {
    let present = tab.eval("return typeof axe !== 'undefined'", vec![]).await;
    if present != serde_json::Value::Bool(true) {
        tab.eval(
            "const s = document.createElement('script'); s.textContent = arguments[0]; \
             document.head.appendChild(s);",
            vec![source.into()],
        )
        .await;
    }
    let result = tab
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             axe.run(document, { runOnly: { type: 'tag', values: \
               ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } }) \
               .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.help} — ` + \
                 v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' ' + \
                   (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 160)).join(' | ')))) \
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe runs");
    result
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Boxes that scroll sideways at this width: the page itself, and any element inside `main`
/// whose content is wider than it.
async fn sideways(tab: &Tab) -> Vec<String> {
    let found = tab
        .eval(
            "const out = []; const d = document.documentElement; \
             if (d.scrollWidth > d.clientWidth + 1) out.push(`the page: ${d.scrollWidth} > ${d.clientWidth}`); \
             for (const el of document.querySelectorAll('main *')) { \
               const ox = getComputedStyle(el).overflowX; \
               if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && ox !== 'visible' && ox !== 'clip' && ox !== 'hidden') \
                 out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')}: ${el.scrollWidth} > ${el.clientWidth}`); \
               if (el.classList.contains('card')) { const r = el.getBoundingClientRect(); \
                 for (const c of el.querySelectorAll('*')) { const cr = c.getBoundingClientRect(); \
                   if (cr.width > 0 && cr.right > r.right + 1 && !c.closest('.table-scroll, .latency-grid-scroll')) { \
                     out.push(`${c.tagName.toLowerCase()}.${[...c.classList].join('.')} sticks out of its card`); break; } } } \
             } return out;",
            vec![],
        )
        .await;
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn screenshot(tab: &Tab, dir: &std::path::Path, name: &str) {
    let height = tab
        .eval("return document.documentElement.scrollHeight", vec![])
        .await
        .as_u64()
        .unwrap_or(800)
        .clamp(800, 6000) as u32;
    tab.client.set_window_size(1280, height + 140).await.ok();
    let png = tab.client.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    tab.client.set_window_size(1280, 800).await.expect("resize");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn every_page_passes_axe_in_both_themes_and_fits_1280_wide() {
    let source = std::fs::read_to_string(workspace_root().join("node_modules/axe-core/axe.min.js"))
        .expect("axe-core from npm: run `make npm-tools` (or `make test`)");
    let shots = std::env::var_os("CHRONOSCOPE_SCREENSHOTS").map(std::path::PathBuf::from);
    if let Some(dir) = &shots {
        std::fs::create_dir_all(dir).expect("the screenshot folder");
    }
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    let tab = browser.open(&server.url("/#/")).await;
    tab.client
        .update_timeouts(TimeoutConfiguration::new(
            Some(Duration::from_secs(120)),
            None,
            None,
        ))
        .await
        .expect("script timeout");
    tab.client.set_window_size(1280, 800).await.expect("resize");
    tab.wait_for_css(".conn[data-status=connected]").await;
    let all = pages(&tab).await;

    let mut problems = Vec::new();
    for scheme in ["light", "dark"] {
        prefer(&tab, scheme).await;
        for page in &all {
            show(&tab, page).await;
            for v in axe(&tab, &source).await {
                problems.push(format!("{page} ({scheme}): {v}"));
            }
            if scheme == "light" {
                for s in sideways(&tab).await {
                    problems.push(format!("{page} at 1280 × 800 scrolls sideways: {s}"));
                }
            }
            if let Some(dir) = &shots {
                let name = page.trim_start_matches("#/");
                let name = if name.is_empty() { "overview" } else { name };
                screenshot(&tab, dir, &format!("{name}-{scheme}")).await;
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    tab.close().await;
    server.stop().await;
}

/// The element that has the focus: a description, and whether its focus ring shows.
async fn focused(tab: &Tab) -> (String, bool) {
    let v = tab
        .eval(
            "const el = document.activeElement; if (!el || el === document.body) return ['body', false]; \
             const s = getComputedStyle(el); \
             const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none'; \
             const id = el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '') \
               + (el.dataset.param ? `[data-param=${el.dataset.param}]` : '') + (el.dataset.node ? `[data-node=${el.dataset.node}]` : ''); \
             return [id, ring];",
            vec![],
        )
        .await;
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_bool().unwrap_or(false),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built front end and Chromium: run through `make test`"]
async fn the_keyboard_reaches_every_control_of_a_lab_with_a_visible_focus() {
    let server = TestServer::start_with_built_app().await;
    let mut browser = Browser::start().await;
    for page in ["#/lamport", "#/drift"] {
        let tab = browser.open(&server.url(&format!("/{page}"))).await;
        tab.wait_for_css("#claims li.claim").await;
        // Every control in the page's main area, as the focus descriptions will name it.
        let controls = tab
            .eval(
                "return [...document.querySelectorAll('main button, main input, main select, main summary, main a[href]')] \
                   .filter(el => !el.disabled && el.getClientRects().length > 0).length",
                vec![],
            )
            .await
            .as_u64()
            .expect("a count");
        let mut seen = std::collections::BTreeSet::new();
        let mut reached_main = 0u64;
        // Tab through the whole page once (a generous bound: header links, then main).
        for _ in 0..(controls + 60) {
            tab.client
                .perform_actions(
                    KeyActions::new("keyboard".into())
                        .then(KeyAction::Down {
                            value: Key::Tab.into(),
                        })
                        .then(KeyAction::Up {
                            value: Key::Tab.into(),
                        }),
                )
                .await
                .expect("press Tab");
            let in_main = tab
                .eval(
                    "const el = document.activeElement; \
                     return !!el && !!el.closest('main') && el !== document.querySelector('main');",
                    vec![],
                )
                .await;
            let (what, ring) = focused(&tab).await;
            if what == "body" {
                continue;
            }
            assert!(ring, "{page}: {what} has the focus but shows no focus ring");
            if in_main == serde_json::Value::Bool(true) {
                let index = tab
                    .eval(
                        "return [...document.querySelectorAll('main button, main input, main select, main summary, main a[href]')] \
                           .indexOf(document.activeElement)",
                        vec![],
                    )
                    .await
                    .as_i64()
                    .unwrap_or(-1);
                if index >= 0 && seen.insert(index) {
                    reached_main += 1;
                }
            }
        }
        assert_eq!(
            reached_main, controls,
            "{page}: the keyboard reached {reached_main} of {controls} controls"
        );
        tab.close().await;
    }
    server.stop().await;
}
