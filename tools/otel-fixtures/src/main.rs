//! Writes the OpenTelemetry fixtures of chronoscope's trace importers.
//!
//! A small shop of four services — `frontend`, `checkout`, `inventory`, `payments` — each a
//! task with its own TCP listener on 127.0.0.1 and its own tracer provider (resource
//! `service.name`), talks over real loopback sockets, propagating the W3C `traceparent` header
//! in each request. For two orders:
//!
//! - `frontend` opens a SERVER span `POST /order` (the root) and a CLIENT span
//!   `checkout.PlaceOrder` around its request to `checkout`;
//! - `checkout` serves it (SERVER `PlaceOrder`), calls `inventory` (`Reserve`, which has an
//!   INTERNAL child `lock stock`) and `payments` (`Charge`), then publishes the order
//!   (PRODUCER `publish order-placed`) on a queue and answers;
//! - after both orders, `inventory` ships them in one batch: a CONSUMER span `ship batch` with a
//!   span link to each order's PRODUCER span (links, not parents: the batch has two causes).
//!
//! Each provider exports every span twice: through `opentelemetry-otlp`'s OTLP/HTTP JSON
//! exporter to a capture endpoint of this program on loopback (each POST body becomes one line
//! of `<name>.otlp.json`, as the OpenTelemetry Collector's file exporter writes them), and
//! through `opentelemetry-contrib`'s Jaeger JSON exporter (one file per service, which this
//! program concatenates into one `{"data": [...]}` document, `<name>.jaeger.json`).
//!
//! Runs: `shop` with every clock as the machine has it, and `skewed` in which `inventory`'s
//! clock reads 40 ms behind the others (its spans' timestamps are taken from that clock) — the
//! clock skew a real multi-host deployment has, which the importer's validator must name.
//!
//! Usage: `cargo run --manifest-path tools/otel-fixtures/Cargo.toml -- <out-dir>`

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, SpanKind, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_contrib::trace::exporter::jaeger_json::JaegerJsonExporter;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::{runtime, Resource};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{TcpListener, TcpStream};

/// Receives OTLP/HTTP POSTs on loopback and keeps each body (one export request) in order.
fn capture_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind the capture endpoint");
    let addr = listener.local_addr().expect("address");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let keep = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                // Requests on one keep-alive connection, one after another.
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    keep.lock()
                        .expect("lock")
                        .push(String::from_utf8(body).expect("OTLP JSON is UTF-8"));
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/v1/traces"), bodies)
}

/// One service: its tracer, and the offset of its clock from the machine's.
#[derive(Clone)]
struct Service {
    tracer: SdkTracer,
    skew: Duration,
    behind: bool,
}

impl Service {
    fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        if self.behind {
            now - self.skew
        } else {
            now + self.skew
        }
    }

    /// Starts a span at this service's clock, as a child of `parent`.
    fn start(
        &self,
        name: &'static str,
        kind: SpanKind,
        parent: &Context,
        links: Vec<Link>,
    ) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(self.now())
            .with_links(links)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    fn end(&self, cx: &Context) {
        cx.span().end_with_timestamp(self.now());
    }
}

fn provider(service: &str, otlp_endpoint: &str, jaeger_dir: &Path) -> SdkTracerProvider {
    let otlp = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(otlp_endpoint)
        .build()
        .expect("the OTLP exporter");
    let jaeger = JaegerJsonExporter::new(
        jaeger_dir.to_path_buf(),
        service.to_owned(),
        service.to_owned(),
        runtime::Tokio,
    );
    SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service.to_owned()).build())
        .with_batch_exporter(otlp)
        .with_span_processor(BatchSpanProcessor::builder(jaeger, runtime::Tokio).build())
        .build()
}

fn inject(cx: &Context) -> String {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

fn extract(traceparent: &str) -> Context {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// Sends one request line `<traceparent> <what>` and waits for the one-line answer.
async fn call(addr: std::net::SocketAddr, cx: &Context, what: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("{} {what}\n", inject(cx)).as_bytes())
        .await
        .expect("send");
    let mut answer = String::new();
    TokioBufReader::new(stream)
        .read_line(&mut answer)
        .await
        .expect("answer");
    answer.trim_end().to_owned()
}

/// Serves requests forever: `handle` gets the caller's context and the request's text.
async fn serve<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(Context, String) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = String> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if TokioBufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let (traceparent, what) = line.trim_end().split_once(' ').unwrap_or(("", ""));
            let answer = handle(extract(traceparent), what.to_owned()).await;
            let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
}

async fn work(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn run(name: &str, out: &Path, inventory_behind_ms: u64) {
    let (endpoint, bodies) = capture_server();
    let jaeger_root = std::env::temp_dir().join(format!("otel-fixtures-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&jaeger_root);
    let names = ["frontend", "checkout", "inventory", "payments"];
    let providers: Vec<SdkTracerProvider> = names
        .iter()
        .map(|s| provider(s, &endpoint, &jaeger_root.join(s)))
        .collect();
    let service = |i: usize, behind_ms: u64| Service {
        tracer: providers[i].tracer("otel-fixtures"),
        skew: Duration::from_millis(behind_ms),
        behind: true,
    };
    let (frontend, checkout, inventory, payments) = (
        service(0, 0),
        service(1, 0),
        service(2, inventory_behind_ms),
        service(3, 0),
    );

    let bind = || async { TcpListener::bind("127.0.0.1:0").await.expect("bind") };
    let (checkout_l, inventory_l, payments_l) = (bind().await, bind().await, bind().await);
    let (checkout_at, inventory_at, payments_at) = (
        checkout_l.local_addr().unwrap(),
        inventory_l.local_addr().unwrap(),
        payments_l.local_addr().unwrap(),
    );
    // The order queue: checkout's producer spans' contexts, consumed by inventory's shipper.
    let queue: Arc<Mutex<Vec<Context>>> = Arc::default();

    let inv = inventory.clone();
    tokio::spawn(serve(inventory_l, move |parent, what| {
        let inv = inv.clone();
        async move {
            let server = inv.start("Reserve", SpanKind::Server, &parent, vec![]);
            server.span().set_attribute(KeyValue::new("order", what));
            work(3).await;
            let lock = inv.start("lock stock", SpanKind::Internal, &server, vec![]);
            work(4).await;
            inv.end(&lock);
            work(2).await;
            inv.end(&server);
            "reserved".to_owned()
        }
    }));
    let pay = payments.clone();
    tokio::spawn(serve(payments_l, move |parent, what| {
        let pay = pay.clone();
        async move {
            let server = pay.start("Charge", SpanKind::Server, &parent, vec![]);
            server.span().set_attribute(KeyValue::new("order", what));
            work(8).await;
            pay.end(&server);
            "charged".to_owned()
        }
    }));
    let co = checkout.clone();
    let q = queue.clone();
    tokio::spawn(serve(checkout_l, move |parent, what| {
        let (co, q) = (co.clone(), q.clone());
        async move {
            let server = co.start("PlaceOrder", SpanKind::Server, &parent, vec![]);
            server.span().set_attribute(KeyValue::new("order", what.clone()));
            work(2).await;
            let client = co.start("inventory.Reserve", SpanKind::Client, &server, vec![]);
            call(inventory_at, &client, &what).await;
            co.end(&client);
            let client = co.start("payments.Charge", SpanKind::Client, &server, vec![]);
            call(payments_at, &client, &what).await;
            co.end(&client);
            let producer = co.start("publish order-placed", SpanKind::Producer, &server, vec![]);
            work(1).await;
            q.lock().expect("queue").push(producer.clone());
            co.end(&producer);
            co.end(&server);
            "placed".to_owned()
        }
    }));

    for order in ["order-1", "order-2"] {
        let root = frontend.start("POST /order", SpanKind::Server, &Context::new(), vec![]);
        root.span().set_attribute(KeyValue::new("order", order));
        work(2).await;
        let client = frontend.start("checkout.PlaceOrder", SpanKind::Client, &root, vec![]);
        call(checkout_at, &client, order).await;
        frontend.end(&client);
        work(1).await;
        frontend.end(&root);
        work(5).await;
    }
    // The shipper: one CONSUMER span, linked to every order it ships.
    let links: Vec<Link> = queue
        .lock()
        .expect("queue")
        .iter()
        .map(|cx| Link::with_context(cx.span().span_context().clone()))
        .collect();
    let ship = inventory.start("ship batch", SpanKind::Consumer, &Context::new(), links);
    work(6).await;
    inventory.end(&ship);

    for p in &providers {
        p.shutdown().expect("flush the exporters");
    }

    let otlp = bodies.lock().expect("bodies").join("\n") + "\n";
    std::fs::write(out.join(format!("{name}.otlp.json")), otlp).expect("write OTLP");
    let mut data = Vec::new();
    for s in names {
        let dir = jaeger_root.join(s);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the Jaeger exporter's directory")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("Jaeger JSON");
            data.extend(doc["data"].as_array().expect("data").iter().cloned());
        }
    }
    let jaeger = serde_json::to_string(&serde_json::json!({ "data": data })).expect("JSON") + "\n";
    std::fs::write(out.join(format!("{name}.jaeger.json")), jaeger).expect("write Jaeger");
    let _ = std::fs::remove_dir_all(&jaeger_root);
    println!("wrote {name}.otlp.json and {name}.jaeger.json to {}", out.display());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_owned()));
    std::fs::create_dir_all(&out).expect("the output directory");
    run("shop", &out, 0).await;
    run("skewed", &out, 40).await;
}
