//! A private `redis-server`: started on a free 127.0.0.1 port with nothing on disk
//! (`--save "" --appendonly no`), ready once it answers PING, killed on drop (also when its owner
//! panics, and by the kernel if the owning thread's process dies first: `PR_SET_PDEATHSIG`).
//! For the tests (one server per test, tests/common/redis_server.rs), the fleet benchmark, and
//! the harness's real-time fleets to come. Needs Debian's `redis-server` (scripts/test installs
//! it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    /// `None` while stopped (between [`stop`](Self::stop) and [`restart`](Self::restart)).
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING (at most 10 s).
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: crate::target::free_port().expect("bind 127.0.0.1:0"),
            child: None,
        };
        server.restart();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server again on the same port, with nothing kept (after [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: prctl only sets a flag of the child being created; it allocates nothing and is
        // async-signal-safe, as `pre_exec` requires.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("redis-server not found: install Debian's redis-server (scripts/test does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} never answered PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Whether a `redis-server` binary can be run here.
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kills the server (SIGKILL: nothing is saved, and there is nothing to save) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGSTOP or SIGCONT to the server.
    pub fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("the server is running");
        // SAFETY: kill(2) on our own child's pid, which is not reaped while `child` is held.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
