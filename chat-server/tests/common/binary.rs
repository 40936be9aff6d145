//! The real `chat-server` binary, started on a store with the flags a test gives, for tests
//! that need the process itself: its exit on SIGTERM, its memory, its start-up.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Client;

/// Lines of the server's log kept for a failure report.
const LOG_TAIL_LINES: usize = 100;

/// The binary, running; killed when dropped.
pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    /// Every line that held the watched text, and how many lines were read in all.
    watched: Arc<Mutex<(Vec<String>, usize)>>,
}

impl Binary {
    /// Starts the binary on `store`, listening on a free loopback port, logging at `info`,
    /// with `args` added. Waits for its `listen=` log line.
    pub fn start(store: &str, args: &[&str]) -> Self {
        Self::launch(store, args, &[], "info", None)
    }

    /// As [`start`](Self::start), with `env` added to the environment.
    pub fn start_with_env(store: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch(store, args, env, "info", None)
    }

    /// [`start`](Self::start) logging at `level`, keeping every line of the log that holds
    /// `watch` (see [`watched`](Self::watched)).
    pub fn start_watching(store: &str, args: &[&str], level: &str, watch: Option<&str>) -> Self {
        Self::launch(store, args, &[], level, watch)
    }

    fn launch(
        store: &str,
        args: &[&str],
        env: &[(&str, &str)],
        level: &str,
        watch: Option<&str>,
    ) -> Self {
        let watched = Arc::new(Mutex::new((Vec::new(), 0)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--store", store])
            .args(args)
            .envs(env.iter().copied())
            .env("CHAT_LOG", level)
            .env_remove("CHAT_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            let tx = tx.clone();
            let watched = Arc::clone(&watched);
            let watch = watch.map(str::to_owned);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    {
                        let mut watched = watched.lock().unwrap();
                        watched.1 += 1;
                        if watch.as_deref().is_some_and(|w| line.contains(w)) {
                            watched.0.push(line.clone());
                        }
                    }
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("listen="))
                    {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                    // One line per request would bury what matters and grow the test's
                    // memory for as long as it runs: keep the others, and 5xx.
                    if line.contains(" request request_id=") && !line.contains(" status=5") {
                        continue;
                    }
                    let mut log = log.lock().unwrap();
                    if log.len() == LOG_TAIL_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the server did not start: {}", tail(&log));
        };
        Self {
            child,
            addr,
            log,
            watched,
        }
    }

    /// The lines that held the watched text, and how many lines the log had in all.
    pub fn watched(&self) -> (Vec<String>, usize) {
        self.watched.lock().unwrap().clone()
    }

    /// A client of this server.
    pub fn client(&self) -> Client {
        Client {
            addr: self.addr,
            token: None,
        }
    }

    /// Registers `name` (password `password-of-<name>`) and logs in: a client with its token.
    pub async fn user(&self, name: &str) -> Client {
        let c = self.client();
        let password = format!("password-of-{name}");
        let body = serde_json::json!({"username": name, "password": password});
        let r = c.post("/users", body.clone()).await;
        assert_eq!(r.status, 201, "register {name}: {}", r.text());
        let r = c.post("/users/login", body).await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text());
        c.with_token(r.json()["token"].as_str().unwrap())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log that were not routine request lines.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Sends SIGTERM and answers how long the process took to exit, which it must do
    /// cleanly within 30 s.
    pub fn terminate(mut self) -> Duration {
        let started = Instant::now();
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}: {}", self.log_tail());
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!(
                    "SIGTERM did not stop the server in 30 s: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(log: &Mutex<VecDeque<String>>) -> String {
    let log = log.lock().unwrap();
    log.iter().map(|l| format!("{l}\n")).collect()
}
