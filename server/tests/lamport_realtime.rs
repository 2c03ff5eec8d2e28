//! One short real-time run of the Lamport lab: three machine threads, real TCP sockets on
//! loopback, two seconds of wall time.

use chronoscope::labs::lamport::{parse_log, trace_node, LabConfig, LabEvent};
use chronoscope::trace::{validate, EventKind};
use chronoscope_server::cli::lamport_realtime::run_realtime;

#[test]
fn machines_exchange_messages_over_loopback_tcp_and_stop_cleanly() {
    let config = LabConfig {
        rates: vec![6, 4, 5],
        internal_probability: 0.1,
        duration_s: 2.0,
        network_delay_ms: 0.0,
        seed: 9,
    };
    let run = run_realtime(config).unwrap();
    assert_eq!(run.logs.len(), 3);
    assert!(
        validate(&run.trace).is_empty(),
        "{:?}",
        validate(&run.trace)
    );
    let mut receives = 0;
    for (m, log) in run.logs.iter().enumerate() {
        let rate = run.config.rates[m] as usize;
        // Ticks are scheduled at k/rate seconds and never skipped: rate × duration events
        // (the last one exactly at the end may or may not fall inside the run).
        let events = log.len() - 1;
        assert!(
            (2 * rate - 1..=2 * rate).contains(&events),
            "machine {m}: {events} events"
        );
        assert_eq!(
            log.last().unwrap().event,
            LabEvent::Stop,
            "machine {m} logged no STOP"
        );
        // The same log format as the simulator, parsed back.
        assert_eq!(parse_log(&run.log_text(m)).unwrap(), *log);
        // The machine's clock agrees with the trace's Lamport times.
        let lane = run.trace.lane(trace_node(m));
        assert_eq!(lane.len(), events);
        for (&id, e) in lane.iter().zip(log) {
            assert_eq!(run.trace.events()[id].lamport, e.clock);
            if let EventKind::Receive { message } = run.trace.events()[id].kind {
                let send = run.trace.send_of(message).unwrap();
                assert!(run.trace.events()[send].lamport < e.clock);
                receives += 1;
            }
        }
    }
    assert!(receives > 0, "no message went through the sockets");
}
