//! HTTP level: the real `chat-server` binary over each store, beside the same binary over
//! the memory store and beside the bare hyper server, all running at once and measured
//! in turns, so that the machine's changing load touches each alike.

use std::path::Path;
use std::sync::Arc;

use crate::loadgen::{self, Client, Outcome, Plan, Req};
use crate::report::{Better, Report};
use crate::server::{Server, Session, fill, message};
use crate::{Scale, StoreKind};

/// Connection counts measured.
const CONNECTIONS: [usize; 3] = [1, 16, 64];
/// Conversations the spread POSTs go to.
const SPREAD: usize = 64;

/// What the load does.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// GET the newest page of 50 messages of a 1,000-message conversation.
    Page,
    /// GET that conversation.
    Conversation,
    /// POST a message to one conversation.
    PostOne,
    /// POST messages spread over 64 conversations.
    PostSpread,
    /// 6 page reads, 2 conversation reads and 2 spread POSTs in every 10 requests.
    Mix,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Page => "GET page of 50",
            Scenario::Conversation => "GET conversation",
            Scenario::PostOne => "POST message, 1 conversation",
            Scenario::PostSpread => "POST message, 64 conversations",
            Scenario::Mix => "mix 60% page/20% conv/20% POST",
        }
    }
}

/// The ids a server's load needs.
struct Fixture {
    token: String,
    read: String,
    post_one: String,
    spread: Arc<Vec<String>>,
}

impl Fixture {
    async fn new(server: &Server) -> Fixture {
        let mut session = Session::new(server.addr).await;
        let read = session.conversation().await;
        fill(server.addr, &session.token, &read, 1000).await;
        let post_one = session.conversation().await;
        let mut spread = Vec::new();
        for _ in 0..SPREAD {
            spread.push(session.conversation().await);
        }
        Fixture {
            token: session.token,
            read,
            post_one,
            spread: Arc::new(spread),
        }
    }

    fn plan(&self, scenario: Scenario) -> Plan {
        let page = Req::get(format!(
            "/chat/conversations/{}/messages?order=desc&limit=50",
            self.read
        ));
        let conversation = Req::get(format!("/chat/conversations/{}", self.read));
        let post_one = Req::post("/chat/messages", &message(&self.post_one));
        let spread: Arc<Vec<Req>> = Arc::new(
            self.spread
                .iter()
                .map(|c| Req::post("/chat/messages", &message(c)))
                .collect(),
        );
        let spread_req = move |c: usize, i: u64| spread[(c + i as usize) % SPREAD].clone();
        match scenario {
            Scenario::Page => Arc::new(move |_, _| page.clone()),
            Scenario::Conversation => Arc::new(move |_, _| conversation.clone()),
            Scenario::PostOne => Arc::new(move |_, _| post_one.clone()),
            Scenario::PostSpread => Arc::new(spread_req),
            Scenario::Mix => Arc::new(move |c, i| match (c as u64 + i) % 10 {
                0..6 => page.clone(),
                6..8 => conversation.clone(),
                _ => spread_req(c, i),
            }),
        }
    }
}

/// Starts the servers, then measures every scenario at every connection count on each.
pub async fn run(
    report: &mut Report,
    scale: &Scale,
    stores: &[StoreKind],
    postgres: Option<&str>,
    binary: &Path,
) {
    report.section("http");
    let dir = tempfile::tempdir().unwrap();
    let mut servers = vec![Server::chat("memory", binary, "memory:").await];
    let mut pg_schema = None;
    for kind in stores {
        let server = match kind {
            StoreKind::Sled => {
                let url = format!("sled:{}", dir.path().join("sled").display());
                Server::chat("sled", binary, &url).await
            }
            StoreKind::Sqlite => {
                let url = format!("sqlite:{}", dir.path().join("chat.sqlite3").display());
                Server::chat("sqlite", binary, &url).await
            }
            StoreKind::Postgres => {
                let Some(url) = postgres else { continue };
                let (schema, url) = crate::peer::schema_url(url, "http").await;
                pg_schema = Some((url.clone(), schema));
                Server::chat("postgres", binary, &url).await
            }
        };
        servers.push(server);
    }
    let mut fixtures = Vec::new();
    for server in &servers {
        fixtures.push(Fixture::new(server).await);
    }

    // The bare server answers GETs with bodies of the sizes the real server sends.
    let mut memory = Client::connect(servers[0].addr, Some(&fixtures[0].token))
        .await
        .unwrap();
    let (_, page) = memory
        .send(&Req::get(format!(
            "/chat/conversations/{}/messages?order=desc&limit=50",
            fixtures[0].read
        )))
        .await
        .unwrap();
    let (_, conversation) = memory
        .send(&Req::get(format!(
            "/chat/conversations/{}",
            fixtures[0].read
        )))
        .await
        .unwrap();
    let (page_file, conv_file) = (dir.path().join("page.json"), dir.path().join("conv.json"));
    std::fs::write(&page_file, &page).unwrap();
    std::fs::write(&conv_file, &conversation).unwrap();
    report.note(format!(
        "bodies: page {} bytes, conversation {} bytes; every server runs with its default \
         logging (one line per request) to /dev/null",
        page.len(),
        conversation.len()
    ));
    let me = std::env::current_exe().unwrap();
    let args = [
        "bare-server".to_string(),
        "--page-body".into(),
        page_file.display().to_string(),
        "--conversation-body".into(),
        conv_file.display().to_string(),
    ];
    let bare = Server::start("bare hyper", &me, &args).await;
    let bare_fixture = Fixture {
        token: String::new(),
        read: fixtures[0].read.clone(),
        post_one: fixtures[0].post_one.clone(),
        spread: Arc::clone(&fixtures[0].spread),
    };

    for scenario in [
        Scenario::Page,
        Scenario::Conversation,
        Scenario::PostOne,
        Scenario::PostSpread,
        Scenario::Mix,
    ] {
        for connections in CONNECTIONS {
            let measure = async |server: &Server, fixture: &Fixture| -> Outcome {
                let plan = fixture.plan(scenario);
                loadgen::run(
                    server.addr,
                    &fixture.token,
                    connections,
                    scale.seconds,
                    plan,
                )
                .await
            };
            let b = measure(&bare, &bare_fixture).await;
            let mut outcomes = Vec::new();
            for (server, fixture) in servers.iter().zip(&fixtures) {
                outcomes.push(measure(server, fixture).await);
            }
            let name = |server: &str| format!("{}, {connections} conn, {server}", scenario.name());
            let m = outcomes[0];
            report.add(
                name("memory"),
                m.rate,
                "req/s",
                Better::Higher,
                "bare hyper",
                b.rate,
                detail(m, b),
            );
            for (server, o) in servers.iter().zip(&outcomes).skip(1) {
                report.add(
                    name(&server.name),
                    o.rate,
                    "req/s",
                    Better::Higher,
                    "memory store",
                    m.rate,
                    detail(*o, m),
                );
            }
        }
    }
    bare.stop().await;
    for server in servers {
        server.stop().await;
    }
    if let Some((url, schema)) = pg_schema {
        crate::peer::drop_schema(&url, &schema).await;
    }
}

/// Latencies of a figure and of its baseline, and any errors.
fn detail(o: Outcome, baseline: Outcome) -> String {
    let mut s = format!(
        "p50 {:.2} ms p99 {:.2} ms (baseline {:.2}/{:.2})",
        o.p50, o.p99, baseline.p50, baseline.p99
    );
    if o.errors > 0 {
        s.push_str(&format!(" ERRORS {}", o.errors));
    }
    s
}
