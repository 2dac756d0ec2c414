//! The processes a run measures: the server binary (in memory or with its SQLite store) and the
//! bare relay (this benchmark's own binary, `relay-server`), each on a port of its own, and what
//! `/proc` says about their memory and CPU. A process is killed when its [`Proc`] is dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub(crate) struct Proc {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub(crate) fn start(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read listening line");
        let addr = line.trim().rsplit("//").next().and_then(|a| a.parse().ok()).expect("listening address");
        Proc { child, addr }
    }
    pub(crate) fn server() -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_objectsync"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--preset", "bench", "--static", "/nonexistent", "--memory"]);
        Proc::start(cmd)
    }
    /// The server with its SQLite store in `dir`.
    pub(crate) fn durable_server(dir: &std::path::Path) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_objectsync"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--preset", "bench", "--static", "/nonexistent", "--data"])
            .arg(dir);
        Proc::start(cmd)
    }
    pub(crate) fn relay() -> Proc {
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        cmd.arg("relay-server");
        Proc::start(cmd)
    }
    pub(crate) fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    }
}

/// Raises this process's open-file limit to its hard limit (W5 holds thousands of sockets).
pub(crate) fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we own; no other preconditions.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s CPU times (100 if unknown).
pub(crate) fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}
