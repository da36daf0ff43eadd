//! The escalation job: every [`crate::WebConfig::escalation_check`], crisis alerts nobody
//! acknowledged within the policy's time go to the clinicians on call, live (the same
//! alert stream the care team watches) and on their alerts page.

use tandem_care::{escalate_overdue, EscalationRun};
use tandem_engine::AlertEvent;

use crate::AppState;

/// One pass: escalates what is overdue now and publishes each escalation live.
pub async fn run_once(state: &AppState) -> Result<EscalationRun, tandem_store::StoreError> {
    let run = escalate_overdue(
        state.store.as_ref(),
        &state.config.escalation,
        state.now_ms(),
    )
    .await?;
    for e in &run.escalated {
        state.engine.publish_alert(AlertEvent::from_stored(
            e.risk_event,
            e.patient,
            &e.level,
            &e.categories,
            e.to.clone(),
        ));
    }
    Ok(run)
}

/// Runs [`run_once`] on a timer until the server shuts down. A failed pass is logged and
/// retried at the next tick; it never stops the job.
pub fn spawn_job(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.escalation_check);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = run_once(&state).await {
                        tracing::error!(error = %e, "escalation pass failed; retrying at the next tick");
                    }
                }
            }
        }
    })
}
