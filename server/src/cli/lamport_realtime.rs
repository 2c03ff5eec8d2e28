//! The Lamport lab in real time, as the lab notebook built it: one thread per machine ticking
//! at its rate on the wall clock, real TCP sockets on loopback between machines, a listener
//! thread per machine filling its queue, connection retry at start-up, one reconnection attempt
//! when a send fails, and a clean shutdown (a stop flag polled with timeouts, every thread
//! joined, each machine logging its final clock).
//!
//! The machines' logic is [`chronoscope::labs::lamport::Machine`], the same as in the simulator,
//! so both modes write the same log format; the run is recorded into the same kind of
//! [`Trace`] (physical time = milliseconds since the run started).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chronoscope::labs::lamport::{
    new_trace, trace_node, Action, LabConfig, LabError, LabMessage, LabRun, Machine,
};
use chronoscope::trace::Trace;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// How often blocked threads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Connection attempts at start-up (the peers' listeners may not be accepting yet).
const CONNECT_ATTEMPTS: u32 = 50;

/// Why a real-time run failed.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] LabError),
    /// A machine could not listen on loopback.
    #[error("machine {machine} cannot listen on 127.0.0.1: {source}")]
    Bind {
        /// The machine.
        machine: usize,
        /// The OS error.
        source: io::Error,
    },
    /// A machine could not connect to a peer after every retry.
    #[error("machine {machine} cannot connect to machine {peer} at {addr}: {source}")]
    Connect {
        /// The connecting machine.
        machine: usize,
        /// The peer.
        peer: usize,
        /// The peer's address.
        addr: SocketAddr,
        /// The last error.
        source: io::Error,
    },
    /// A machine thread panicked.
    #[error("machine {0}'s thread panicked")]
    Panicked(usize),
}

type Queue = Arc<Mutex<VecDeque<LabMessage>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since `start`, as seconds (the log's resolution).
fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_micros() as f64 / 1e6
}

/// Runs the lab for `config.duration_s` seconds of wall-clock time on loopback sockets.
pub fn run_realtime(config: LabConfig) -> Result<LabRun, RealtimeError> {
    let config = config.validated()?;
    let n = config.rates.len();
    let mut listeners = Vec::with_capacity(n);
    for machine in 0..n {
        let l = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| RealtimeError::Bind { machine, source })?;
        listeners.push(l);
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .enumerate()
        .map(|(machine, l)| {
            l.local_addr()
                .map_err(|source| RealtimeError::Bind { machine, source })
        })
        .collect::<Result<_, _>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    let trace = Arc::new(Mutex::new(new_trace(n)));
    let queues: Vec<Queue> = (0..n).map(|_| Queue::default()).collect();
    let start = Instant::now();

    let listener_threads: Vec<JoinHandle<()>> = listeners
        .into_iter()
        .zip(&queues)
        .map(|(l, q)| {
            let (q, stop) = (q.clone(), stop.clone());
            thread::spawn(move || listen(l, q, stop))
        })
        .collect();

    let machine_threads: Vec<JoinHandle<Result<Vec<_>, RealtimeError>>> = (0..n)
        .map(|m| {
            let ctx = MachineCtx {
                m,
                rate: config.rates[m],
                machines: n,
                p: config.internal_probability,
                seed: config.seed.wrapping_add(m as u64),
                duration_s: config.duration_s,
                addrs: addrs.clone(),
                queue: queues[m].clone(),
                trace: trace.clone(),
                stop: stop.clone(),
                start,
            };
            thread::spawn(move || ctx.run())
        })
        .collect();

    let mut logs = Vec::with_capacity(n);
    let mut first_error = None;
    for (m, h) in machine_threads.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(log)) => logs.push(log),
            Ok(Err(e)) => {
                stop.store(true, Ordering::SeqCst);
                first_error.get_or_insert(e);
                logs.push(Vec::new());
            }
            Err(_) => {
                stop.store(true, Ordering::SeqCst);
                first_error.get_or_insert(RealtimeError::Panicked(m));
                logs.push(Vec::new());
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in listener_threads {
        let _ = h.join();
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let trace = std::mem::take(&mut *lock(&trace));
    Ok(LabRun {
        config,
        logs,
        trace,
    })
}

/// Accepts connections until stopped; each connection gets a reader thread that parses
/// `from clock message` lines into the queue. Joins its readers before returning.
fn listen(listener: TcpListener, queue: Queue, stop: Arc<AtomicBool>) {
    let mut readers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (q, stop) = (queue.clone(), stop.clone());
                readers.push(thread::spawn(move || read_messages(stream, q, stop)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
    for r in readers {
        let _ = r.join();
    }
}

fn read_messages(stream: TcpStream, queue: Queue, stop: Arc<AtomicBool>) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_line(&mut line) {
            Ok(0) => return, // the peer closed the connection
            Ok(_) => {
                if line.ends_with('\n') {
                    if let Some(msg) = parse_wire(line.trim_end()) {
                        lock(&queue).push_back(msg);
                    }
                    line.clear();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// The wire format: one line per message, `from clock message-id`.
fn wire(msg: &LabMessage) -> String {
    format!("{} {} {}\n", msg.from, msg.clock, msg.message)
}

fn parse_wire(line: &str) -> Option<LabMessage> {
    let mut it = line.split(' ');
    let msg = LabMessage {
        from: it.next()?.parse().ok()?,
        clock: it.next()?.parse().ok()?,
        message: it.next()?.parse().ok()?,
    };
    it.next().is_none().then_some(msg)
}

struct MachineCtx {
    m: usize,
    rate: u32,
    machines: usize,
    p: f64,
    seed: u64,
    duration_s: f64,
    addrs: Vec<SocketAddr>,
    queue: Queue,
    trace: Arc<Mutex<Trace>>,
    stop: Arc<AtomicBool>,
    start: Instant,
}

impl MachineCtx {
    fn connect(&self, peer: usize) -> Result<TcpStream, RealtimeError> {
        let addr = self.addrs[peer];
        let mut last = None;
        for _ in 0..CONNECT_ATTEMPTS {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                    return Ok(s);
                }
                Err(e) => {
                    last = Some(e);
                    thread::sleep(POLL);
                }
            }
        }
        Err(RealtimeError::Connect {
            machine: self.m,
            peer,
            addr,
            source: last.unwrap_or_else(|| io::Error::other("no attempt made")),
        })
    }

    fn run(self) -> Result<Vec<chronoscope::labs::lamport::LogEntry>, RealtimeError> {
        let mut conns: BTreeMap<usize, TcpStream> = BTreeMap::new();
        for peer in (0..self.machines).filter(|&p| p != self.m) {
            conns.insert(peer, self.connect(peer)?);
        }
        let mut machine = Machine::new(self.m, self.rate);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let node = trace_node(self.m);
        let period = Duration::from_secs_f64(1.0 / f64::from(self.rate));
        let end = self.start + Duration::from_secs_f64(self.duration_s);
        let mut k: u32 = 1;
        loop {
            let due = self.start + period * k;
            if due > end || self.stop.load(Ordering::SeqCst) {
                break;
            }
            // Sleep in short steps so a stop request is seen promptly.
            while Instant::now() < due && !self.stop.load(Ordering::SeqCst) {
                thread::sleep((due - Instant::now()).min(POLL));
            }
            k += 1;
            let now_s = seconds_since(self.start);
            let now_ms = now_s * 1e3;
            let taken = {
                let mut q = lock(&self.queue);
                q.pop_front().map(|msg| (msg, q.len()))
            };
            if let Some((msg, left)) = taken {
                machine.receive(now_s, &msg, left);
                let _ = lock(&self.trace).receive(
                    node,
                    msg.message,
                    now_ms,
                    format!("RECEIVE from M{}", msg.from),
                );
                continue;
            }
            match machine.roll(now_s, self.machines, self.p, &mut rng) {
                Action::Internal => {
                    lock(&self.trace).local(node, now_ms, "INTERNAL");
                }
                Action::Send { to, clock } => {
                    let names: Vec<String> = to.iter().map(|t| format!("M{t}")).collect();
                    // Record the send before writing, so no receiver can dequeue it first.
                    let message = lock(&self.trace).send(
                        node,
                        now_ms,
                        format!("SEND to {}", names.join(",")),
                    );
                    let line = wire(&LabMessage {
                        from: self.m,
                        clock,
                        message,
                    });
                    for dest in to {
                        let sent = conns
                            .get_mut(&dest)
                            .is_some_and(|c| c.write_all(line.as_bytes()).is_ok());
                        if !sent {
                            // Reconnect once and retry, as the notebook's machines do.
                            if let Ok(mut c) = self.connect(dest) {
                                if c.write_all(line.as_bytes()).is_ok() {
                                    conns.insert(dest, c);
                                }
                            }
                        }
                    }
                }
            }
        }
        let left = lock(&self.queue).len();
        machine.stop(seconds_since(self.start).min(self.duration_s), left);
        drop(conns);
        Ok(machine.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lines_round_trip() {
        let m = LabMessage {
            from: 2,
            clock: 17,
            message: 40,
        };
        assert_eq!(parse_wire(wire(&m).trim_end()), Some(m));
        assert_eq!(parse_wire("1 2"), None);
        assert_eq!(parse_wire("1 2 3 4"), None);
    }
}
