//! Real database servers for the tests, from the machine's packages: PostgreSQL (Debian's
//! `postgresql`) started in a temporary directory on a free loopback port, as the `postgres`
//! user when the tests run as root (PostgreSQL refuses to run as root), and Redis (Debian's
//! `redis-server`) the same way, with nothing saved to disk; each stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long PostgreSQL may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A PostgreSQL server of its own; each test takes a fresh database of it.
pub struct Postgres {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    databases: AtomicUsize,
}

/// The directory of PostgreSQL's server programs (`initdb`, `postgres`): the newest version in
/// `/usr/lib/postgresql/*/bin`, or `POSTGRES_BIN`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    found.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server: install it (apt-get install -y postgresql) or set POSTGRES_BIN to its bin directory"
        )
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// `program` with `args`, as the `postgres` user when this process is root (`setpriv` execs
/// the program itself, so the child is the server and signals reach it).
fn as_server_user(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "postgres", "--regid", "postgres", "--init-groups", "--"]).arg(program).args(args);
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Postgres {
    /// Creates a cluster in a temporary directory and starts its server on a free port of
    /// 127.0.0.1 (user `objectsync`, trusted: nothing but this machine reaches it).
    pub async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("objectsync-pg-").tempdir().expect("tempdir");
        if is_root() {
            let status = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let data_arg = data.to_str().expect("a UTF-8 path");
        let init =
            as_server_user(&bin.join("initdb"), &["-D", data_arg, "-U", "objectsync", "--auth=trust", "-E", "UTF8"])
                .stdout(Stdio::null())
                .output()
                .expect("initdb runs");
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let port = free_port();
        let port_arg = port.to_string();
        let socket_dir = dir.path().to_str().expect("a UTF-8 path");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = as_server_user(
            &bin.join("postgres"),
            &[
                "-D",
                data_arg,
                "-p",
                &port_arg,
                "-k",
                socket_dir,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ],
        )
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("postgres starts");
        let pg = Postgres { child, port, dir, databases: AtomicUsize::new(0) };
        pg.wait_ready().await;
        pg
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            match tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await {
                Ok(_) => return,
                Err(e) if started.elapsed() > START_DEADLINE => {
                    let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                    panic!("PostgreSQL did not accept connections in time: {e}\n{log}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://objectsync@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; its URL.
    pub async fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await.expect("connect");
        let task = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        drop(client);
        let _ = task.await;
        self.url(&name)
    }
}

impl Drop for Postgres {
    /// A fast shutdown (SIGINT: the server ends its sessions and stops), then SIGKILL if it
    /// has not stopped within 5 s.
    fn drop(&mut self) {
        // SAFETY: kill() only sends a signal to the child this harness started.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server of its own on a free loopback port, keeping nothing on disk.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` (or `REDIS_SERVER`) in a temporary directory.
    pub async fn start() -> Redis {
        let dir = tempfile::Builder::new().prefix("objectsync-redis-").tempdir().expect("tempdir");
        let mut redis = Redis { child: None, port: free_port(), dir };
        redis.run().await;
        redis
    }

    async fn run(&mut self) {
        let program = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new(&program)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("no Redis server ({program}: {e}): install it (apt-get install -y redis-server) or set REDIS_SERVER")
            });
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(started.elapsed() < START_DEADLINE, "Redis did not accept connections in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (everything it held is gone, as in a crash) and starts it again on the
    /// same port after `down`.
    pub async fn restart(&mut self, down: Duration) {
        self.stop();
        tokio::time::sleep(down).await;
        self.run().await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
