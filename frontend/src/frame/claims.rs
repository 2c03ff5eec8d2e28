//! The claim-and-check panel: the textbook results the lab demonstrates, each with this run's
//! numbers and the verdict they give, so a learner knows what to look at.

use chronoscope::labs::Verdict;
use leptos::prelude::*;

use super::Run;

fn badge(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "✓ holds",
        Verdict::Fails => "✗ does not hold",
        Verdict::Pending => "… not decided yet",
    }
}

/// The claims card.
#[component]
pub fn Claims(run: Run) -> impl IntoView {
    let claims = move || run.with_lab(|l| l.claims()).unwrap_or_default();
    let so_far = move || {
        run.with_lab(|l| match l.end() {
            Some(end) if l.now() < end => format!(
                "So far (t = {:.1} s of {:.0} s): the verdicts are final when the run ends.",
                l.now().as_secs_f64(),
                end.as_secs_f64()
            ),
            Some(_) => "The whole run:".to_owned(),
            None => format!("After t = {:.1} s:", l.now().as_secs_f64()),
        })
        .unwrap_or_default()
    };
    view! {
        <div class="card claims" aria-labelledby="claims-title">
            <h2 id="claims-title">"What this run shows"</h2>
            <p class="hint so-far">{so_far}</p>
            <ul id="claims">
                {move || {
                    claims()
                        .into_iter()
                        .map(|c| {
                            view! {
                                <li class="claim" data-verdict=c.verdict.key()>
                                    <span class="verdict">{badge(c.verdict)}</span>
                                    <span class="claim-text">{c.claim}</span>
                                    <span class="claim-evidence">{c.evidence}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}
