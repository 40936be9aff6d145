//! Soak: a realistic mix of traffic at 64 concurrent keep-alive connections against the real
//! `chat-server` binary on a sled store in a temporary directory, for `CHAT_SOAK_SECS`
//! seconds (30 by default; 60 for the full minute).
//!
//! Passes when every response has the status the client expected (no 5xx, no connection
//! error, no timeout) and the server's resident memory (VmRSS) at the end is within 1.5× of
//! its value after the first ten seconds. The output — the memory curve, the request counts
//! and rates per operation, the CPU time of server and client — is the figure recorded in
//! `docs/RELIABILITY.md`:
//!
//! ```sh
//! CHAT_SOAK_SECS=60 cargo test -p chat-server --test soak -- --nocapture
//! ```
//!
//! Each connection is one worker that owns its conversations, messages, attachments,
//! providers and configs, so the status of every request is known in advance even though
//! eight workers share each user. The data set stays bounded (a worker keeps three
//! conversations of at most forty messages and deletes the oldest as it starts a new one),
//! so memory that keeps growing is a leak, not data.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use common::binary::Binary;

/// Concurrent connections, one worker each.
const CONNECTIONS: usize = 64;
/// Users registered up front: Argon2 at production cost is tens of milliseconds and
/// ~19 MiB per hash, so users are few and shared by workers.
const USERS: usize = 8;
/// When the baseline of memory is taken.
const WARM_UP: Duration = Duration::from_secs(10);
/// How far memory may grow from the baseline to the end.
const MAX_GROWTH: f64 = 1.5;
/// A request not answered in this long counts as failed (the server's own request timeout
/// is 30 s, which would answer 503 first).
const REQUEST_DEADLINE: Duration = Duration::from_secs(40);
/// Conversations a worker keeps; starting another deletes the oldest.
const CONVERSATIONS_KEPT: usize = 3;
/// Messages in a conversation before the worker starts a new one.
const MESSAGES_PER_CONVERSATION: u64 = 40;
/// Attachments a worker puts on one message at most.
const ATTACHMENTS_PER_MESSAGE: usize = 4;
/// Private providers a worker keeps at most.
const PROVIDERS_KEPT: usize = 3;
/// How often each connection logs in afresh (and out again): one login a second across
/// the 64, as users opening the app. By time rather than by share of the requests, so
/// that the Argon2 work does not depend on how fast the machine serves the rest.
const SESSION_INTERVAL: Duration = Duration::from_secs(CONNECTIONS as u64);

/// The test's length, from `CHAT_SOAK_SECS`.
fn soak_length() -> Duration {
    let secs = match std::env::var("CHAT_SOAK_SECS") {
        Ok(s) => s
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("CHAT_SOAK_SECS={s:?} is not a number of seconds")),
        Err(_) => 30,
    };
    // The comparison needs a stretch of load after the baseline to mean anything.
    assert!(
        secs >= WARM_UP.as_secs() + 10,
        "CHAT_SOAK_SECS must be at least {}",
        WARM_UP.as_secs() + 10
    );
    Duration::from_secs(secs)
}

#[test]
fn soak_mixed_traffic_on_sled() {
    let length = soak_length();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sled:{}", dir.path().join("sled").display());
    add_shared_provider(&store);
    let server = Binary::start(&store, &["--shutdown-timeout", "10s"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut report = runtime.block_on(soak(server.addr, server.pid(), length));
    drop(runtime);
    let client_cpu = cpu_seconds("self");
    report.log_tail = server.log_tail();
    let shutdown = server.terminate();

    report.print(length, client_cpu, shutdown);
    assert!(
        report.stats.failures.is_empty(),
        "{} failed requests (first ones above); server log tail:\n{}",
        report.stats.failed(),
        report.log_tail
    );
    assert_eq!(report.stats.server_errors, 0, "5xx answers");
    let growth = report.end_kib as f64 / report.baseline_kib as f64;
    assert!(
        growth <= MAX_GROWTH,
        "resident memory grew {growth:.2}× from {} KiB after {} s to {} KiB at the end",
        report.baseline_kib,
        WARM_UP.as_secs(),
        report.end_kib
    );
}

/// What a soak run measured.
struct Report {
    /// RSS once the server listens.
    idle_kib: u64,
    /// RSS once the users are registered and logged in (Argon2 at production cost).
    users_kib: u64,
    samples: Vec<Sample>,
    baseline_kib: u64,
    end_kib: u64,
    stats: Stats,
    elapsed: Duration,
    server_cpu: f64,
    log_tail: String,
}

/// One reading of the server's memory.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    requests: u64,
}

/// Sets the users and workers up, runs them for `length` while sampling memory every
/// second, and gathers what they saw.
async fn soak(addr: SocketAddr, pid: u32, length: Duration) -> Report {
    let idle_kib = rss_kib(pid);
    let users = setup_users(addr).await;
    let users_kib = rss_kib(pid);
    let shared_provider = shared_provider_id(addr, &users[0]).await;
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for n in 0..CONNECTIONS {
        let user = Arc::clone(&users[n % USERS]);
        let mut worker = Worker::new(n, addr, user, shared_provider.clone(), Arc::clone(&done));
        worker.start_conversation().await;
        workers.push(worker);
    }
    let setup_failures: Vec<_> = workers
        .iter()
        .flat_map(|w| w.stats.failures.clone())
        .collect();
    assert!(setup_failures.is_empty(), "setup: {setup_failures:?}");

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(pid, started, Arc::clone(&done), Arc::clone(&stop));
    let deadline = started + length;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(w.run(started, deadline)))
        .collect();
    let mut stats = Stats::default();
    for task in tasks {
        stats.merge(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let end_kib = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let baseline_kib = samples
        .iter()
        .find(|s| s.at >= WARM_UP)
        .expect("a sample after the warm-up")
        .rss_kib;
    Report {
        idle_kib,
        users_kib,
        samples,
        baseline_kib,
        end_kib,
        stats,
        elapsed,
        server_cpu: cpu_seconds(&pid.to_string()),
        log_tail: String::new(),
    }
}

impl Report {
    fn print(&self, length: Duration, client_cpu: f64, shutdown: Duration) {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let secs = self.elapsed.as_secs_f64();
        println!(
            "soak: {CONNECTIONS} keep-alive connections, {USERS} users, {} s, sled store",
            length.as_secs()
        );
        println!(
            "RSS idle {:.1} MiB; after registering and logging in the users {:.1} MiB",
            mib(self.idle_kib),
            mib(self.users_kib)
        );
        println!(
            "{:>5} {:>9} {:>10} {:>8}",
            "t (s)", "RSS MiB", "requests", "req/s"
        );
        // About fifteen lines whatever the length, and always the baseline's.
        let step = length.as_secs().div_ceil(15).max(1);
        let mut last: Option<Sample> = None;
        for s in &self.samples {
            let t = s.at.as_secs_f64().round() as u64;
            if t % step != 0 && t != WARM_UP.as_secs() {
                continue;
            }
            let rate = match last {
                Some(l) if s.at > l.at => {
                    format!(
                        "{:.0}",
                        (s.requests - l.requests) as f64 / (s.at - l.at).as_secs_f64()
                    )
                }
                _ => "-".to_owned(),
            };
            println!(
                "{t:>5} {:>9.1} {:>10} {rate:>8}",
                mib(s.rss_kib),
                s.requests
            );
            last = Some(*s);
        }
        let peak = self.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        println!(
            "RSS after {} s {:.1} MiB, at the end {:.1} MiB ({:.2}×, limit {MAX_GROWTH}×), \
             peak {:.1} MiB",
            WARM_UP.as_secs(),
            mib(self.baseline_kib),
            mib(self.end_kib),
            self.end_kib as f64 / self.baseline_kib as f64,
            mib(peak)
        );
        println!(
            "{} requests in {secs:.1} s = {:.0}/s; {} failed, {} answered 5xx",
            self.stats.requests(),
            self.stats.requests() as f64 / secs,
            self.stats.failed(),
            self.stats.server_errors
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "CPU: server {:.1} s ({:.0}% of {cores} cores over the run, setup included), \
             client {client_cpu:.1} s; SIGTERM to exit {} ms",
            self.server_cpu,
            self.server_cpu / secs / cores as f64 * 100.0,
            shutdown.as_millis()
        );
        println!(
            "{:<26} {:>8} {:>7} {:>8} {:>8}",
            "operation", "requests", "per s", "mean ms", "max ms"
        );
        for (name, op) in &self.stats.ops {
            println!(
                "{name:<26} {:>8} {:>7.1} {:>8.2} {:>8.1}",
                op.count,
                op.count as f64 / secs,
                op.latency.as_secs_f64() * 1000.0 / op.count.max(1) as f64,
                op.max.as_secs_f64() * 1000.0
            );
        }
        for failure in self.stats.failures.iter().take(20) {
            println!("FAILED {failure}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server process.

/// Adds the shared provider every user sees, as an operator does before starting the
/// server (sled allows one process at a time).
fn add_shared_provider(store: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["provider", "add", "--name", "Shared soak provider"])
        .args(["--endpoint", "https://llm.example/v1", "--store", store])
        .env_remove("CHAT_STORE")
        .output()
        .unwrap();
    assert!(output.status.success(), "provider add: {output:?}");
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The CPU time (user and system) process `pid` (or `self`) has used, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after its closing parenthesis are
    // fixed: utime and stime are the 12th and 13th of them.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: LazyLock<f64> = LazyLock::new(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    *TICKS
}

/// Reads the server's memory every second from `started` until `stop`.
fn spawn_sampler(
    pid: u32,
    started: Instant,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        let mut next = started;
        while !stop.load(Ordering::Relaxed) {
            samples.push(Sample {
                at: started.elapsed(),
                rss_kib: rss_kib(pid),
                requests: done.load(Ordering::Relaxed),
            });
            next += Duration::from_secs(1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        samples
    })
}

// ---------------------------------------------------------------------------------------
// The client.

/// One kept-alive HTTP/1.1 connection to the server.
struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Sends `request` on the connection, opening it if there is none. A connection the
    /// server closed is an error: under steady traffic it has no reason to.
    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
            return Err("the server closed the kept-alive connection".to_owned());
        }
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => {
                let stream = TcpStream::connect(self.addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                self.sender.insert(sender)
            }
        };
        let result = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        result.map_err(|e| {
            self.sender = None;
            format!("connection error: {e}")
        })
    }
}

/// A registered, logged-in user.
struct User {
    name: String,
    password: String,
    id: String,
    token: String,
}

/// Registers and logs in the users, all at once.
async fn setup_users(addr: SocketAddr) -> Vec<Arc<User>> {
    let tasks: Vec<_> = (0..USERS)
        .map(|n| {
            tokio::spawn(async move {
                let name = format!("soak-user-{n}");
                let password = format!("a long enough password {n}");
                let mut conn = Conn::new(addr);
                let body = json!({"username": name, "password": password});
                let (status, body) = conn
                    .send(request(Method::POST, "/users", None, Some(&body)))
                    .await
                    .unwrap();
                assert_eq!(status, 201, "register: {body:?}");
                let id = parse(&body)["id"].as_str().unwrap().to_owned();
                let body = json!({"username": name, "password": password});
                let (status, body) = conn
                    .send(request(Method::POST, "/users/login", None, Some(&body)))
                    .await
                    .unwrap();
                assert_eq!(status, 200, "login: {body:?}");
                let token = parse(&body)["token"].as_str().unwrap().to_owned();
                Arc::new(User {
                    name,
                    password,
                    id,
                    token,
                })
            })
        })
        .collect();
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap());
    }
    users
}

/// The id of the provider [`add_shared_provider`] made.
async fn shared_provider_id(addr: SocketAddr, user: &User) -> String {
    let (status, body) = Conn::new(addr)
        .send(request(
            Method::GET,
            "/chat/llm-providers",
            Some(&user.token),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let providers = parse(&body);
    let shared = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["owner_id"].is_null());
    shared.expect("the shared provider")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(body).unwrap())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap()
}

/// The body as JSON; one that is not JSON reads as `null`, which the checks then report
/// as a wrong answer rather than stopping the worker.
fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Counts of one operation.
#[derive(Default, Clone, Copy)]
struct OpStats {
    count: u64,
    latency: Duration,
    max: Duration,
}

/// What workers saw.
#[derive(Default)]
struct Stats {
    ops: BTreeMap<&'static str, OpStats>,
    server_errors: u64,
    failures: Vec<String>,
    failed: u64,
}

impl Stats {
    fn record(&mut self, op: &'static str, latency: Duration) {
        let s = self.ops.entry(op).or_default();
        s.count += 1;
        s.latency += latency;
        s.max = s.max.max(latency);
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        // The first ones tell the story; all of them would be memory for nothing.
        if self.failures.len() < 100 {
            self.failures.push(what);
        }
    }

    fn merge(&mut self, other: Stats) {
        for (op, s) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.count += s.count;
            mine.latency += s.latency;
            mine.max = mine.max.max(s.max);
        }
        self.server_errors += other.server_errors;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }

    fn requests(&self) -> u64 {
        self.ops.values().map(|s| s.count).sum()
    }

    fn failed(&self) -> u64 {
        self.failed
    }
}

/// A small, seedable generator: the mix is the same from run to run.
struct Rng(u64);

impl Rng {
    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low)
    }
}

/// Text message contents are cut from.
static TEXT: LazyLock<String> = LazyLock::new(|| {
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n"
        .repeat(64)
});

/// The operations of the mix. Logins are not among them: they come by time (see
/// [`SESSION_INTERVAL`]).
#[derive(Debug, Clone, Copy)]
enum Op {
    Append,
    ListMessages,
    GetMessage,
    GetConversation,
    ListConversations,
    Rename,
    StartConversation,
    DeleteMessage,
    CreateAttachment,
    ListAttachments,
    GetAttachment,
    DeleteAttachment,
    GetDeleted,
    Me,
    Health,
    ListProviders,
    GetProvider,
    CreateProvider,
    DeleteProvider,
    CreateConfig,
    GetConfig,
    ReplaceConfig,
    DeleteConfig,
    BadInput,
}

/// How many of a thousand requests each operation is: mostly appends and reads, as in a
/// chat application.
const MIX: &[(Op, u32)] = &[
    (Op::Append, 260),
    (Op::ListMessages, 140),
    (Op::GetMessage, 90),
    (Op::GetConversation, 80),
    (Op::ListConversations, 50),
    (Op::Rename, 30),
    (Op::StartConversation, 5),
    (Op::DeleteMessage, 30),
    (Op::CreateAttachment, 50),
    (Op::ListAttachments, 40),
    (Op::GetAttachment, 30),
    (Op::DeleteAttachment, 15),
    (Op::GetDeleted, 20),
    (Op::Me, 20),
    (Op::Health, 10),
    (Op::ListProviders, 25),
    (Op::GetProvider, 25),
    (Op::CreateProvider, 10),
    (Op::DeleteProvider, 5),
    (Op::CreateConfig, 15),
    (Op::GetConfig, 25),
    (Op::ReplaceConfig, 10),
    (Op::DeleteConfig, 5),
    (Op::BadInput, 10),
];

struct Conversation {
    id: String,
    last_seq: u64,
    messages: Vec<Message>,
}

struct Message {
    id: String,
    attachments: Vec<String>,
}

struct Provider {
    id: String,
    config: bool,
}

/// One connection's client, and the objects it owns.
struct Worker {
    n: usize,
    rng: Rng,
    conn: Conn,
    user: Arc<User>,
    shared_provider: String,
    conversations: VecDeque<Conversation>,
    providers: Vec<Provider>,
    /// Paths this worker deleted; a GET of one must be 404.
    deleted: VecDeque<String>,
    serial: u64,
    stats: Stats,
    done: Arc<AtomicU64>,
}

impl Worker {
    fn new(
        n: usize,
        addr: SocketAddr,
        user: Arc<User>,
        shared_provider: String,
        done: Arc<AtomicU64>,
    ) -> Self {
        Self {
            n,
            rng: Rng(n as u64 + 1),
            conn: Conn::new(addr),
            user,
            shared_provider,
            conversations: VecDeque::new(),
            providers: Vec::new(),
            deleted: VecDeque::new(),
            serial: 0,
            stats: Stats::default(),
            done,
        }
    }

    async fn run(mut self, started: Instant, deadline: Instant) -> Stats {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        // Staggered, so that the logins are spread evenly over the run.
        let mut next_session = started + SESSION_INTERVAL * self.n as u32 / CONNECTIONS as u32;
        while Instant::now() < deadline {
            if Instant::now() >= next_session {
                self.session().await;
                next_session += SESSION_INTERVAL;
                continue;
            }
            let mut pick = self.rng.below(total as usize) as u32;
            let op = MIX
                .iter()
                .find(|(_, w)| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .unwrap()
                .0;
            self.step(op).await;
        }
        self.stats
    }

    /// Sends one request as this worker's user (or as `token`'s, or anonymously) and checks
    /// its status; answers the body when the status was `expected`.
    async fn call_as(
        &mut self,
        token: Option<&str>,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Option<Bytes> {
        let what = format!("worker {} {op}: {method} {path}", self.n);
        let request = request(method, path, token, body.as_ref());
        let started = Instant::now();
        let result = tokio::time::timeout(REQUEST_DEADLINE, self.conn.send(request)).await;
        self.stats.record(op, started.elapsed());
        self.done.fetch_add(1, Ordering::Relaxed);
        match result {
            Err(_) => {
                self.conn.sender = None;
                self.stats
                    .fail(format!("{what}: no answer in {REQUEST_DEADLINE:?}"));
                None
            }
            Ok(Err(e)) => {
                self.stats.fail(format!("{what}: {e}"));
                None
            }
            Ok(Ok((status, body))) => {
                if status >= 500 {
                    self.stats.server_errors += 1;
                }
                if status == expected {
                    Some(body)
                } else {
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                    self.stats
                        .fail(format!("{what}: {status}, expected {expected}: {text}"));
                    None
                }
            }
        }
    }

    async fn call(
        &mut self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Option<Bytes> {
        let user = Arc::clone(&self.user);
        self.call_as(Some(&user.token), op, method, path, body, expected)
            .await
    }

    /// Creates an object with a POST to `path`; answers its id when the answer was 201.
    async fn create(&mut self, op: &'static str, path: &str, body: Value) -> Option<String> {
        let answer = self.call(op, Method::POST, path, Some(body), 201).await?;
        Some(parse(&answer)["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Records a response that had the right status but the wrong content.
    fn wrong(&mut self, op: &str, why: String) {
        self.stats.fail(format!("worker {} {op}: {why}", self.n));
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn forget(&mut self, path: String) {
        if self.deleted.len() == 32 {
            self.deleted.pop_front();
        }
        self.deleted.push_back(path);
    }

    /// A random one of this worker's conversations, if it has any.
    fn pick_conversation(&mut self) -> Option<&Conversation> {
        let i = self.rng.below(self.conversations.len().max(1));
        self.conversations.get(i)
    }

    /// A random one of this worker's messages, as (conversation, message) indexes, when it
    /// has one (with an attachment, if `with_attachment`).
    fn pick_message(&mut self, with_attachment: bool) -> Option<(usize, usize)> {
        let candidates: Vec<(usize, usize)> = self
            .conversations
            .iter()
            .enumerate()
            .flat_map(|(c, conv)| {
                conv.messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !with_attachment || !m.attachments.is_empty())
                    .map(move |(m, _)| (c, m))
            })
            .collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.below(candidates.len())])
    }

    async fn step(&mut self, op: Op) {
        match op {
            Op::Append => self.append().await,
            Op::ListMessages => self.list_messages().await,
            Op::GetMessage => self.get_message().await,
            Op::GetConversation => self.get_conversation().await,
            Op::ListConversations => {
                if let Some(body) = self
                    .call(
                        "list conversations",
                        Method::GET,
                        "/chat/conversations?limit=20",
                        None,
                        200,
                    )
                    .await
                    && !parse(&body).is_array()
                {
                    self.wrong("list conversations", "not an array".to_owned());
                }
            }
            Op::Rename => self.rename().await,
            Op::StartConversation => self.start_conversation().await,
            Op::DeleteMessage => self.delete_message().await,
            Op::CreateAttachment => self.create_attachment().await,
            Op::ListAttachments => self.list_attachments().await,
            Op::GetAttachment => self.get_attachment().await,
            Op::DeleteAttachment => self.delete_attachment().await,
            Op::GetDeleted => {
                if self.deleted.is_empty() {
                    return self.append().await;
                }
                let path = self.deleted[self.rng.below(self.deleted.len())].clone();
                self.call("get deleted (404)", Method::GET, &path, None, 404)
                    .await;
            }
            Op::Me => {
                if let Some(body) = self.call("me", Method::GET, "/users/me", None, 200).await
                    && parse(&body)["id"] != self.user.id.as_str()
                {
                    self.wrong("me", "another user".to_owned());
                }
            }
            Op::Health => {
                self.call_as(None, "healthz", Method::GET, "/healthz", None, 200)
                    .await;
            }
            Op::ListProviders => {
                if let Some(body) = self
                    .call(
                        "list providers",
                        Method::GET,
                        "/chat/llm-providers",
                        None,
                        200,
                    )
                    .await
                {
                    let shared = self.shared_provider.clone();
                    let listed = parse(&body);
                    let found = listed
                        .as_array()
                        .is_some_and(|l| l.iter().any(|p| p["id"] == shared.as_str()));
                    if !found {
                        self.wrong("list providers", "the shared provider is missing".into());
                    }
                }
            }
            Op::GetProvider => {
                let id = match self.rng.below(self.providers.len() + 1) {
                    0 => self.shared_provider.clone(),
                    i => self.providers[i - 1].id.clone(),
                };
                self.call(
                    "get provider",
                    Method::GET,
                    &format!("/chat/llm-providers/{id}"),
                    None,
                    200,
                )
                .await;
            }
            Op::CreateProvider => self.create_provider().await,
            Op::DeleteProvider => self.delete_provider().await,
            Op::CreateConfig => self.create_config().await,
            Op::GetConfig | Op::ReplaceConfig | Op::DeleteConfig => self.config_op(op).await,
            Op::BadInput => {
                let id = self.conversations.back().map(|c| c.id.clone());
                self.call(
                    "bad input (400)",
                    Method::POST,
                    "/chat/messages",
                    Some(json!({"conversation_id": id, "role": "narrator", "content": "x"})),
                    400,
                )
                .await;
            }
        }
    }

    /// Starts a conversation; past [`CONVERSATIONS_KEPT`], deletes the oldest with all
    /// under it, as a user clearing old chats does.
    async fn start_conversation(&mut self) {
        let serial = self.next_serial();
        let title = format!("soak {} conversation {serial}", self.n);
        let body = json!({"title": title});
        let Some(id) = self
            .create("create conversation", "/chat/conversations", body)
            .await
        else {
            return;
        };
        self.conversations.push_back(Conversation {
            id,
            last_seq: 0,
            messages: Vec::new(),
        });
        if self.conversations.len() > CONVERSATIONS_KEPT {
            let old = self.conversations.pop_front().unwrap();
            let path = format!("/chat/conversations/{}", old.id);
            if self
                .call("delete conversation", Method::DELETE, &path, None, 204)
                .await
                .is_some()
            {
                self.forget(path);
                if let Some(m) = old.messages.first() {
                    self.forget(format!("/chat/messages/{}", m.id));
                }
            }
        }
    }

    async fn append(&mut self) {
        if self
            .conversations
            .back()
            .is_none_or(|c| c.last_seq >= MESSAGES_PER_CONVERSATION)
        {
            self.start_conversation().await;
        }
        let Some(conv) = self.conversations.back() else {
            return;
        };
        let conversation_id = conv.id.clone();
        let expected_seq = conv.last_seq + 1;
        let len = self.rng.range(20, 4000);
        let role = ["user", "assistant"][expected_seq as usize % 2];
        let mut body = json!({
            "conversation_id": conversation_id,
            "role": role,
            "content": &TEXT[..len],
        });
        if role == "assistant" {
            body["metadata"] = json!({"model": "soak-1", "tokens": len / 4, "finish": "stop"});
        }
        let Some(answer) = self
            .call(
                "append message",
                Method::POST,
                "/chat/messages",
                Some(body),
                201,
            )
            .await
        else {
            return;
        };
        let message = parse(&answer);
        let seq = message["seq"].as_u64();
        let conv = self.conversations.back_mut().unwrap();
        // Only this worker appends to its conversations, so the seq is known.
        conv.last_seq = seq.unwrap_or(expected_seq);
        conv.messages.push(Message {
            id: message["id"].as_str().unwrap_or_default().to_owned(),
            attachments: Vec::new(),
        });
        if seq != Some(expected_seq) {
            self.wrong(
                "append message",
                format!("seq {seq:?}, expected {expected_seq}"),
            );
        }
    }

    async fn list_messages(&mut self) {
        let Some(conv) = self.pick_conversation() else {
            return self.append().await;
        };
        let (id, last) = (conv.id.clone(), conv.last_seq);
        let descending = self.rng.below(3) == 0;
        let query = if descending {
            format!("order=desc&limit=20&before={}", last + 1)
        } else {
            format!("limit=20&after={}", self.rng.below(last as usize + 1))
        };
        let path = format!("/chat/conversations/{id}/messages?{query}");
        let Some(body) = self
            .call("list messages", Method::GET, &path, None, 200)
            .await
        else {
            return;
        };
        let seqs: Vec<u64> = parse(&body)
            .as_array()
            .map(|page| page.iter().filter_map(|m| m["seq"].as_u64()).collect())
            .unwrap_or_default();
        let ordered = seqs
            .windows(2)
            .all(|w| if descending { w[0] > w[1] } else { w[0] < w[1] });
        if !ordered || seqs.len() > 20 {
            self.wrong("list messages", format!("{path}: seqs {seqs:?}"));
        }
    }

    async fn get_message(&mut self) {
        let Some((c, m)) = self.pick_message(false) else {
            return self.append().await;
        };
        let id = self.conversations[c].messages[m].id.clone();
        let path = format!("/chat/messages/{id}");
        if let Some(body) = self
            .call("get message", Method::GET, &path, None, 200)
            .await
            && parse(&body)["id"] != id.as_str()
        {
            self.wrong("get message", format!("{path}: another message"));
        }
    }

    async fn get_conversation(&mut self) {
        let Some(conv) = self.pick_conversation() else {
            return self.append().await;
        };
        let (id, count) = (conv.id.clone(), conv.messages.len() as u64);
        let path = format!("/chat/conversations/{id}");
        if let Some(body) = self
            .call("get conversation", Method::GET, &path, None, 200)
            .await
        {
            let got = parse(&body)["message_count"].as_u64();
            if got != Some(count) {
                self.wrong(
                    "get conversation",
                    format!("{path}: message_count {got:?}, expected {count}"),
                );
            }
        }
    }

    async fn rename(&mut self) {
        let Some(conv) = self.pick_conversation() else {
            return self.append().await;
        };
        let id = conv.id.clone();
        let serial = self.next_serial();
        let title = format!("soak {} renamed {serial}", self.n);
        let path = format!("/chat/conversations/{id}");
        if let Some(body) = self
            .call(
                "rename conversation",
                Method::PATCH,
                &path,
                Some(json!({"title": title})),
                200,
            )
            .await
            && parse(&body)["title"] != title.as_str()
        {
            self.wrong("rename conversation", format!("{path}: title not changed"));
        }
    }

    async fn delete_message(&mut self) {
        let Some((c, m)) = self.pick_message(false) else {
            return self.append().await;
        };
        let id = self.conversations[c].messages[m].id.clone();
        let path = format!("/chat/messages/{id}");
        if self
            .call("delete message", Method::DELETE, &path, None, 204)
            .await
            .is_some()
        {
            let message = self.conversations[c].messages.remove(m);
            self.forget(path);
            if let Some(a) = message.attachments.first() {
                self.forget(format!("/chat/attachments/{a}"));
            }
        }
    }

    async fn create_attachment(&mut self) {
        let Some((c, m)) = self.pick_message(false) else {
            return self.append().await;
        };
        if self.conversations[c].messages[m].attachments.len() >= ATTACHMENTS_PER_MESSAGE {
            return self.get_attachment().await;
        }
        let message_id = self.conversations[c].messages[m].id.clone();
        let serial = self.next_serial();
        let body = json!({
            "message_id": message_id,
            "file_type": "image/png",
            "file_path": format!("s3://soak-bucket/{}/{serial}.png", self.n),
        });
        if let Some(id) = self
            .create("create attachment", "/chat/attachments", body)
            .await
        {
            self.conversations[c].messages[m].attachments.push(id);
        }
    }

    async fn list_attachments(&mut self) {
        let Some((c, m)) = self.pick_message(false) else {
            return self.append().await;
        };
        let message = &self.conversations[c].messages[m];
        let (id, count) = (message.id.clone(), message.attachments.len());
        let path = format!("/chat/messages/{id}/attachments");
        if let Some(body) = self
            .call("list attachments", Method::GET, &path, None, 200)
            .await
        {
            let got = parse(&body).as_array().map(Vec::len);
            if got != Some(count) {
                self.wrong(
                    "list attachments",
                    format!("{path}: {got:?} attachments, expected {count}"),
                );
            }
        }
    }

    async fn get_attachment(&mut self) {
        let Some((c, m)) = self.pick_message(true) else {
            return self.create_attachment_somewhere().await;
        };
        let attachments = &self.conversations[c].messages[m].attachments;
        let id = attachments[self.rng.below(attachments.len())].clone();
        self.call(
            "get attachment",
            Method::GET,
            &format!("/chat/attachments/{id}"),
            None,
            200,
        )
        .await;
    }

    /// For a read of attachments when there are none yet: creates one, or appends when
    /// there is no message either.
    async fn create_attachment_somewhere(&mut self) {
        if self.pick_message(false).is_some() {
            Box::pin(self.create_attachment()).await;
        } else {
            self.append().await;
        }
    }

    async fn delete_attachment(&mut self) {
        let Some((c, m)) = self.pick_message(true) else {
            return self.create_attachment_somewhere().await;
        };
        let attachments = &self.conversations[c].messages[m].attachments;
        let i = self.rng.below(attachments.len());
        let path = format!("/chat/attachments/{}", attachments[i]);
        if self
            .call("delete attachment", Method::DELETE, &path, None, 204)
            .await
            .is_some()
        {
            self.conversations[c].messages[m].attachments.remove(i);
            self.forget(path);
        }
    }

    async fn create_provider(&mut self) {
        if self.providers.len() >= PROVIDERS_KEPT {
            return self.delete_provider().await;
        }
        let serial = self.next_serial();
        let body = json!({
            "name": format!("soak {} provider {serial}", self.n),
            "api_endpoint": format!("https://llm{}.example/v1", self.n),
        });
        if let Some(id) = self
            .create("create provider", "/chat/llm-providers", body)
            .await
        {
            self.providers.push(Provider { id, config: false });
        }
    }

    async fn delete_provider(&mut self) {
        if self.providers.is_empty() {
            return Box::pin(self.create_provider()).await;
        }
        let i = self.rng.below(self.providers.len());
        let path = format!("/chat/llm-providers/{}", self.providers[i].id);
        if self
            .call("delete provider", Method::DELETE, &path, None, 204)
            .await
            .is_some()
        {
            let provider = self.providers.remove(i);
            self.forget(path);
            if provider.config {
                let user = &self.user.id;
                self.forget(format!("/chat/user-llm-configs/{user}/{}", provider.id));
            }
        }
    }

    /// A fresh API key of 40 characters.
    fn api_key(&mut self) -> String {
        format!("sk-soak-{:016x}{:016x}", self.rng.next(), self.rng.next())
    }

    async fn create_config(&mut self) {
        let Some(i) = self.providers.iter().position(|p| !p.config) else {
            return self.create_provider().await;
        };
        let key = self.api_key();
        let body = json!({"provider_id": self.providers[i].id, "api_key": key});
        if let Some(answer) = self
            .call(
                "create config",
                Method::POST,
                "/chat/user-llm-configs",
                Some(body),
                201,
            )
            .await
        {
            self.providers[i].config = true;
            // The config's path, deleted before, names this one now.
            let path = format!(
                "/chat/user-llm-configs/{}/{}",
                self.user.id, self.providers[i].id
            );
            self.deleted.retain(|p| *p != path);
            let hint = parse(&answer)["api_key_hint"].clone();
            if hint != format!("…{}", &key[key.len() - 4..]).as_str() {
                self.wrong("create config", format!("api_key_hint {hint}"));
            }
        }
    }

    async fn config_op(&mut self, op: Op) {
        let with_config: Vec<usize> = (0..self.providers.len())
            .filter(|&i| self.providers[i].config)
            .collect();
        if with_config.is_empty() {
            return self.create_config().await;
        }
        let i = with_config[self.rng.below(with_config.len())];
        let path = format!(
            "/chat/user-llm-configs/{}/{}",
            self.user.id, self.providers[i].id
        );
        match op {
            Op::GetConfig => {
                self.call("get config", Method::GET, &path, None, 200).await;
            }
            Op::ReplaceConfig => {
                let key = self.api_key();
                self.call(
                    "replace config",
                    Method::PUT,
                    &path,
                    Some(json!({"api_key": key})),
                    200,
                )
                .await;
            }
            _ => {
                if self
                    .call("delete config", Method::DELETE, &path, None, 204)
                    .await
                    .is_some()
                {
                    self.providers[i].config = false;
                    self.forget(path);
                }
            }
        }
    }

    /// A login (Argon2 at production cost), a request with the new token, a logout, and
    /// the revoked token refused: a short session.
    async fn session(&mut self) {
        let user = Arc::clone(&self.user);
        let body = json!({"username": user.name, "password": user.password});
        let Some(answer) = self
            .call_as(None, "login", Method::POST, "/users/login", Some(body), 200)
            .await
        else {
            return;
        };
        let token = parse(&answer)["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let token = Some(token.as_str());
        self.call_as(
            token,
            "me (new session)",
            Method::GET,
            "/users/me",
            None,
            200,
        )
        .await;
        self.call_as(token, "logout", Method::POST, "/users/logout", None, 204)
            .await;
        self.call_as(
            token,
            "me (logged out, 401)",
            Method::GET,
            "/users/me",
            None,
            401,
        )
        .await;
    }
}
