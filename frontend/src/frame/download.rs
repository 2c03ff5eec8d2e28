//! Downloads: every table of a run as CSV or JSON, the trace as a ShiViz log (charts download
//! their SVG from [`super::Chart`]). The file is made when the link is used, from the run as
//! it is then.

use chronoscope::trace::shiviz;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use super::Run;

/// Saves `content` as a file named `name` through a temporary link to a Blob.
pub fn save(name: &str, mime: &str, content: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(content));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    let doc = document();
    if let Ok(a) = doc.create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        if let Some(body) = doc.body() {
            let _ = body.append_child(&a);
            a.click();
            let _ = body.remove_child(&a);
        }
    }
    // The download has taken its copy; a later revoke keeps slow browsers safe.
    set_timeout(
        move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        },
        std::time::Duration::from_secs(30),
    );
}

/// `lamport-seed7-machines.csv`
pub fn file_name(run: &Run, stem: &str, ext: &str) -> String {
    let seed = run
        .params
        .with_untracked(|p| p.get("seed").unwrap_or("1").to_owned());
    format!("{}-seed{seed}-{stem}.{ext}", run.slug())
}

/// The downloads card.
#[component]
pub fn Downloads(run: Run) -> impl IntoView {
    // The tables' names change with the parameters, not with every event.
    let tables = Memo::new(move |_| {
        run.params.track();
        untrack(|| {
            run.with_lab(|l| {
                l.tables()
                    .into_iter()
                    .map(|t| (t.name, t.title))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        })
    });
    let get = move |name: &str, json: bool| {
        untrack(|| {
            run.with_lab(|l| {
                l.tables().into_iter().find(|t| t.name == name).map(|t| {
                    if json {
                        t.to_json()
                    } else {
                        t.to_csv()
                    }
                })
            })
        })
        .flatten()
        .unwrap_or_default()
    };
    view! {
        <div class="card downloads">
            <h2>"Download this run"</h2>
            <ul>
                {move || {
                    tables
                        .get()
                        .into_iter()
                        .map(|(name, title)| {
                            let (n1, n2) = (name.clone(), name.clone());
                            view! {
                                <li>
                                    {title}
                                    " "
                                    <button
                                        class="download"
                                        data-download=format!("{name}.csv")
                                        on:click=move |_| save(&file_name(&run, &n1, "csv"), "text/csv", &get(&n1, false))
                                    >
                                        "CSV"
                                    </button>
                                    " "
                                    <button
                                        class="download"
                                        data-download=format!("{name}.json")
                                        on:click=move |_| save(&file_name(&run, &n2, "json"), "application/json", &get(&n2, true))
                                    >
                                        "JSON"
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
                <li>
                    "The trace (every message and event) "
                    <button
                        class="download"
                        data-download="trace.log"
                        on:click=move |_| {
                            let text = untrack(|| run.with_lab(|l| shiviz::export(l.trace()))).unwrap_or_default();
                            save(&file_name(&run, "trace", "shiviz.log"), "text/plain", &text);
                        }
                    >
                        "ShiViz log"
                    </button>
                </li>
            </ul>
        </div>
    }
}
