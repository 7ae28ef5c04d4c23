//! The journal: one fixed-size [`Record`] per request the mock answered, in bounded memory.
//!
//! Audits of a proxy under test come from what the upstream saw, so the journal must be complete
//! or say that it is not: its capacity is allocated once, and a record that does not fit is
//! counted in [`Journal::dropped`], never silently lost. A record is written when its answer is
//! finished (the last byte of a stream handed to the connection, or the request abandoned), by a
//! guard ([`Entry`]) whose `Drop` pushes it, so a client that disconnects mid-stream, a reset and
//! a shutdown all leave a record.
//!
//! Written out as CSV (the conventions of `summary.csv`: a header row, plain numbers) or JSONL,
//! chosen by the file's extension.

use super::models::ModelNames;
use parking_lot::Mutex;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// No account (an unknown token, the token endpoint refusing an unknown refresh token).
pub const NO_ACCOUNT: u32 = u32::MAX;

/// Which surface a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Endpoint {
    Token = 0,
    GenerateContent = 1,
    StreamGenerateContent = 2,
    CodeAssistGenerate = 3,
    CodeAssistStream = 4,
    /// A path the mock does not serve (answered 404).
    Other = 5,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::GenerateContent => "generate",
            Endpoint::StreamGenerateContent => "stream",
            Endpoint::CodeAssistGenerate => "code_assist_generate",
            Endpoint::CodeAssistStream => "code_assist_stream",
            Endpoint::Other => "other",
        }
    }

    /// Whether this is an API call (made with an access token).
    pub fn is_api(self) -> bool {
        !matches!(self, Endpoint::Token | Endpoint::Other)
    }
}

/// What the presented credential was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Auth {
    /// Valid (or, for `/token`, a live refresh token).
    Valid = 0,
    Expired = 1,
    Revoked = 2,
    Unknown = 3,
    /// No credential, or a malformed request.
    Missing = 4,
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Valid => "valid",
            Auth::Expired => "expired",
            Auth::Revoked => "revoked",
            Auth::Unknown => "unknown",
            Auth::Missing => "missing",
        }
    }
}

/// The connection was closed unanswered (an injected reset).
pub const FLAG_RESET: u8 = 1;
/// The answer was abandoned before its end (client gone, or shutdown).
pub const FLAG_INCOMPLETE: u8 = 2;
/// The body came after a delay (a slow body).
pub const FLAG_SLOW_BODY: u8 = 4;

/// One request, fixed-size (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// ns since the mock started, when the handler saw the request.
    pub arrival_ns: u64,
    /// ns since the mock started, when the answer was finished or abandoned.
    pub finish_ns: u64,
    /// Account index, or [`NO_ACCOUNT`].
    pub account: u32,
    /// Token generation presented (API) or issued (`/token` 200); 0 otherwise.
    pub generation: u32,
    /// Interned model id ([`super::models`]).
    pub model: u16,
    pub status: u16,
    pub endpoint: Endpoint,
    pub auth: Auth,
    pub flags: u8,
}

/// The bounded journal.
pub struct Journal {
    started: Instant,
    /// Allocated once with `capacity`; a plain mutex, held for one push (tens of ns), because a
    /// record is written once per request and contention at 20,000 requests/s is negligible.
    records: Mutex<Vec<Record>>,
    capacity: usize,
    dropped: AtomicU64,
    pub models: ModelNames,
}

impl Journal {
    pub fn new(capacity: usize) -> Journal {
        Journal {
            started: Instant::now(),
            records: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
            dropped: AtomicU64::new(0),
            models: ModelNames::default(),
        }
    }

    /// ns since the mock started.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// The instant the journal's times count from.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn push(&self, r: Record) {
        let mut records = self.records.lock();
        if records.len() < self.capacity {
            records.push(r);
        } else {
            drop(records);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records that did not fit.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the records so far, in the order they were finished.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().clone()
    }

    /// CSV with a header row; `model` by name.
    pub fn write_csv(&self, out: &mut impl Write) -> io::Result<()> {
        let names = self.models.names();
        writeln!(
            out,
            "arrival_ns,finish_ns,endpoint,account,generation,model,status,auth,flags"
        )?;
        for r in self.records() {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                r.arrival_ns,
                r.finish_ns,
                r.endpoint.as_str(),
                account_text(r.account),
                r.generation,
                crate::report::csv::field(&model_name(&names, r.model)),
                r.status,
                r.auth.as_str(),
                r.flags
            )?;
        }
        Ok(())
    }

    /// One JSON object per line; then a last line `{"dropped": N, "capacity": C}` so a reader
    /// knows whether the journal is complete.
    pub fn write_jsonl(&self, out: &mut impl Write) -> io::Result<()> {
        let names = self.models.names();
        for r in self.records() {
            let line = serde_json::json!({
                "arrival_ns": r.arrival_ns,
                "finish_ns": r.finish_ns,
                "endpoint": r.endpoint.as_str(),
                "account": (r.account != NO_ACCOUNT).then_some(r.account),
                "generation": r.generation,
                "model": model_name(&names, r.model),
                "status": r.status,
                "auth": r.auth.as_str(),
                "flags": r.flags,
            });
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "{}",
            serde_json::json!({"dropped": self.dropped(), "capacity": self.capacity})
        )
    }

    /// Writes the journal to `path` in `format`. A CSV file has no trailer (it would break the
    /// table): its completeness is [`Journal::dropped`], which the CLI prints and `/_mock/stats`
    /// reports.
    pub fn write_file(&self, path: &Path, format: JournalFormat) -> io::Result<()> {
        let mut text = Vec::with_capacity(self.len() * 80 + 128);
        match format {
            JournalFormat::Csv => self.write_csv(&mut text)?,
            JournalFormat::Jsonl => self.write_jsonl(&mut text)?,
        }
        crate::report::write_file(path, &text)
    }
}

fn account_text(a: u32) -> String {
    if a == NO_ACCOUNT {
        String::new()
    } else {
        a.to_string()
    }
}

fn model_name(names: &[String], id: u16) -> String {
    if id == super::models::OTHER {
        "(other)".into()
    } else {
        names.get(id as usize).cloned().unwrap_or_default()
    }
}

/// How a journal file is written, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalFormat {
    Csv,
    Jsonl,
}

impl JournalFormat {
    /// `.csv` or `.jsonl`; anything else is refused with what is expected.
    pub fn of_path(path: &Path) -> Result<JournalFormat, String> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Ok(JournalFormat::Csv),
            Some("jsonl") => Ok(JournalFormat::Jsonl),
            _ => Err(format!(
                "{}: expected a journal file name ending in .csv or .jsonl",
                path.display()
            )),
        }
    }
}

/// A record in progress: pushed to the journal when dropped, with the finish time then.
pub struct Entry {
    journal: Arc<Journal>,
    pub record: Record,
}

impl Entry {
    pub fn new(journal: Arc<Journal>, endpoint: Endpoint) -> Entry {
        let arrival_ns = journal.now_ns();
        Entry {
            journal,
            record: Record {
                arrival_ns,
                finish_ns: arrival_ns,
                account: NO_ACCOUNT,
                generation: 0,
                model: super::models::NONE,
                status: 0,
                endpoint,
                auth: Auth::Missing,
                flags: 0,
            },
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.record.finish_ns = self.journal.now_ns();
        self.journal.push(self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_journal_counts_what_it_drops() {
        let j = Arc::new(Journal::new(2));
        for status in [200, 401, 429] {
            let mut e = Entry::new(j.clone(), Endpoint::GenerateContent);
            e.record.status = status;
        }
        assert_eq!(j.len(), 2);
        assert_eq!(j.dropped(), 1);
        let r = j.records();
        assert_eq!((r[0].status, r[1].status), (200, 401));
        assert!(r[0].finish_ns >= r[0].arrival_ns);
        let mut jsonl = Vec::new();
        j.write_jsonl(&mut jsonl).unwrap();
        let text = String::from_utf8(jsonl).unwrap();
        assert!(text.lines().last().unwrap().contains("\"dropped\":1"), "{text}");
        assert_eq!(std::mem::size_of::<Record>(), 32);
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(JournalFormat::of_path(Path::new("j.csv")), Ok(JournalFormat::Csv));
        assert_eq!(JournalFormat::of_path(Path::new("j.jsonl")), Ok(JournalFormat::Jsonl));
        assert!(JournalFormat::of_path(Path::new("j.txt"))
            .unwrap_err()
            .contains(".csv or .jsonl"));
    }
}
