//! Lease ids: 128 random bits from the operating system, written as 32 hex digits.
//!
//! A lease id is a capability (whoever knows it can report the outcome, and so ban or count on
//! the credential), so it must not be guessable from other ids: no counter, no time, no seeded
//! generator. The bits come from `/dev/urandom`, the kernel's CSPRNG (never blocking once the
//! system has booted), opened once, read 4 KiB (256 ids) at a time: one system call per lease
//! was one of the reverse proxy's per-request costs (`strace -c`), and bytes the kernel's CSPRNG
//! handed out are as unpredictable in our buffer as in its own. Each byte is handed out once.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::sync::Mutex;

/// Bytes read from the kernel at a time.
const BATCH: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseId(pub u128);

impl LeaseId {
    /// Parses the 32-hex-digit form; anything else is not a lease id.
    pub fn parse(text: &str) -> Option<LeaseId> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(text, 16).ok().map(LeaseId))
            .flatten()
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Where lease ids come from.
#[derive(Debug)]
pub struct LeaseIds {
    urandom: File,
    /// Random bytes not handed out yet: `buffer[used..]`.
    unused: Mutex<Unused>,
}

struct Unused {
    buffer: Box<[u8; BATCH]>,
    used: usize,
}

impl fmt::Debug for Unused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes are future lease ids: never printed.
        write!(f, "Unused {{ {} bytes }}", BATCH - self.used)
    }
}

impl LeaseIds {
    pub fn open() -> std::io::Result<LeaseIds> {
        Ok(LeaseIds {
            urandom: File::open("/dev/urandom")?,
            unused: Mutex::new(Unused {
                buffer: Box::new([0; BATCH]),
                used: BATCH,
            }),
        })
    }

    pub fn next(&self) -> std::io::Result<LeaseId> {
        let mut unused = self.unused.lock().unwrap_or_else(|e| e.into_inner());
        if unused.used + 16 > BATCH {
            (&self.urandom).read_exact(&mut unused.buffer[..])?;
            unused.used = 0;
        }
        let at = unused.used;
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&unused.buffer[at..at + 16]);
        // Zeroed once handed out, so a later dump of the buffer shows no live id.
        unused.buffer[at..at + 16].fill(0);
        unused.used = at + 16;
        Ok(LeaseId(u128::from_le_bytes(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_round_trip() {
        let ids = LeaseIds::open().unwrap();
        let a = ids.next().unwrap();
        let b = ids.next().unwrap();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(LeaseId::parse(&text), Some(a));
        assert_eq!(LeaseId::parse("xyz"), None);
        assert_eq!(LeaseId::parse(&"g".repeat(32)), None);
        // Bits spread over the whole id: 64 ids never share their top 32 bits by chance.
        let tops: std::collections::HashSet<u32> = (0..64).map(|_| (ids.next().unwrap().0 >> 96) as u32).collect();
        assert_eq!(tops.len(), 64);
        // Across refills of the buffer (256 ids each), no id comes back.
        let many: std::collections::HashSet<LeaseId> = (0..1_000).map(|_| ids.next().unwrap()).collect();
        assert_eq!(many.len(), 1_000);
    }
}
