//! A server on a free loopback port, clients, and waiting with deadlines (never sleeps as
//! synchronization).

use objectsync::client::{Client, ClientError, ConnectOptions, Event};
use objectsync::model::{Change, Value};
use objectsync::presets::demo;
use objectsync::{Server, ServerBuilder, ServerLimits};
use std::future::Future;
use std::time::Duration;

/// Every wait in these tests gives up after this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub server: Server,
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// The demo types and room, with limits generous enough for bursts from one client.
    pub fn builder() -> ServerBuilder {
        Server::builder(demo::types())
            .on_room_create(|_, tx| demo::build_room(tx))
            .limits(Self::builder_limits())
            .in_memory()
    }

    /// The limits of [`builder`](Self::builder): the defaults, with rates for bursts.
    pub fn builder_limits() -> ServerLimits {
        ServerLimits { messages_per_second_max: 100_000, message_burst_max: 100_000, ..ServerLimits::default() }
    }

    pub async fn start() -> TestServer {
        Self::start_with(Self::builder()).await
    }

    pub async fn start_with(builder: ServerBuilder) -> TestServer {
        let server = builder.build().expect("server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve(listener).await });
        TestServer { server, addr, task }
    }

    pub fn url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.addr)
    }

    pub async fn client(&self, room: &str) -> Client {
        within(Client::connect(&self.url(room), ConnectOptions::default())).await.expect("connect")
    }

    pub async fn snapshot(&self, room: &str) -> objectsync::model::NodeSnapshot {
        let handle = self.server.room(room).await.expect("room");
        within(handle.read(|doc| doc.snapshot().root)).await.expect("read")
    }

    pub async fn stop(self) {
        self.server.shutdown();
        let _ = within(self.task).await;
    }
}

/// A metric's value from the server's Prometheus text (0 if absent).
pub fn metric(ts: &TestServer, name: &str) -> f64 {
    ts.server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Awaits `f`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f).await.expect("timed out")
}

/// The next event that is not a presence change.
pub async fn next_non_presence(c: &mut Client) -> Event {
    loop {
        match within(c.next_event()).await.expect("event") {
            Event::Presence { .. } => continue,
            e => return e,
        }
    }
}

/// Reads until the connection closes; returns the close code and reason.
pub async fn until_closed(c: &mut Client) -> (u16, String) {
    loop {
        match within(c.next_event()).await {
            Ok(_) => continue,
            Err(ClientError::Closed { code, reason }) => return (code, reason),
            Err(e) => return (0, e.to_string()),
        }
    }
}

pub fn create_node(id: &str, x: i64) -> Change {
    Change::Create {
        id: id.into(),
        type_name: "Node".into(),
        parent: "graph".into(),
        index: None,
        attrs: objectsync::dict! { "pos" => objectsync::dict! { "x" => x, "y" => 10 } },
        children: Vec::new(),
    }
}

pub fn set_x(id: &str, x: i64) -> Change {
    Change::DictSet { obj: id.into(), attr: "pos".into(), key: "x".into(), value: Value::Int(x) }
}

pub fn set_title(id: &str, title: &str) -> Change {
    Change::Set { obj: id.into(), attr: "title".into(), value: title.into() }
}

/// The real `objectsync` binary as a child process, at the address of its first stdout line
/// (`listening on http://ADDR`, or `https://` with TLS). Killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl ServerProcess {
    /// Starts `cmd` (stdout is taken; stderr dropped, or kept with `OBJECTSYNC_TEST_SERVER_LOGS=1`
    /// to see the servers' logs) and waits for its listening line.
    pub fn spawn(cmd: &mut std::process::Command) -> ServerProcess {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(if std::env::var_os("OBJECTSYNC_TEST_SERVER_LOGS").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()
            .expect("spawn the server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|url| url.split_once("://"))
            .and_then(|(_, addr)| addr.parse().ok())
            .unwrap_or_else(|| panic!("not a listening line: {line:?}"));
        ServerProcess { child, addr }
    }

    /// The WebSocket URL of `room`, with `scheme` (`ws` or `wss`).
    pub fn url_with(&self, scheme: &str, room: &str) -> String {
        format!("{scheme}://{}/ws/{room}", self.addr)
    }

    /// The plain WebSocket URL of `room`.
    pub fn url(&self, room: &str) -> String {
        self.url_with("ws", room)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(self) {
        drop(self);
    }

    /// Sends `signal` (SIGSTOP to pause the process, SIGCONT to resume it).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() only sends a signal to the child this harness started.
        let sent = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(sent, 0, "kill({signal})");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
