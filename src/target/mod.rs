//! Target mode: any HTTP proxy, in any language, put under credpool's load, with credpool playing
//! Google (DESIGN.md §8).
//!
//! What the harness needs from a target is small and the same for every proxy: a process it can
//! start with the right ports, URLs and accounts file, know when it is ready, and stop without
//! leaving anything behind; and a way to send it one request in the protocol it speaks and judge
//! the answer on its body, not its status alone. Those are the pieces here, one per file:
//!
//! - [`placeholders`]: `{port}`, `{api_url}`, `{accounts}`, ... in a target's argv and environment.
//! - [`process`]: the target's process group: started, polled until ready, stopped with SIGTERM
//!   then SIGKILL, killed on drop; its stderr's tail kept for error messages.
//! - [`protocol`]: one request in `openai` (streaming or not), `gemini` or `code_assist` form, and
//!   the verdict on its answer (a 200 carrying an error chunk is a client error; a request past
//!   its timeout is hung).
//!
//! - [`accounts_file`]: the target's accounts file, written with the mock's tokens and read back.
//! - [`lease`]: the `lease` protocol (credpool serve's lease API): lease, call, complete.
//! - [`load`]: the scenario's `[load]` sent to the target, open loop, one bounded task a request.
//! - [`audit`]: the figures from the mock's journal and the file, and the verdict on each.
//! - [`runner`]: one target run, from the mock's start to the audit.
//! - [`intercept`]: `intercept = true`: credpool as the target's HTTPS proxy for Google's hosts.
pub mod accounts_file;
pub mod audit;
pub mod intercept;
pub mod lease;
pub mod load;
pub mod placeholders;
pub mod process;
pub mod protocol;
pub mod runner;

/// A free TCP port on 127.0.0.1, for a target to listen on.
///
/// The port is free when this returns; another process could take it before the target binds it,
/// which [`process::TargetProcess::wait_ready`] then reports as a target that exited early.
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()
        .map(|a| a.port())
}
