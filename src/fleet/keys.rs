//! The Redis key names of one pool, all hash-tagged `{pool}:...` so that every key of a pool
//! lands in one cluster slot and a script may touch them all.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:meta` | hash | `next`: the next slot number (slots are never reused); its existence means "seeded" |
//! | `{p}:ids` | hash | slot -> account id; membership: a slot missing here is deleted |
//! | `{p}:tok` | hash | slot -> current access token |
//! | `{p}:gen` | hash | slot -> generation of that token (the refresh commit's fence) |
//! | `{p}:exp` | hash | slot -> token expiry, epoch ms (absent: refresh before use) |
//! | `{p}:dis` | hash | slot -> `1` when disabled (absent: enabled) |
//! | `{p}:bans` | hash | `slot|series` -> ban deadline, epoch ms |
//! | `{p}:by` | hash | slot -> `owner@generation` of the last commit (for idempotent retries) |
//! | `{p}:ticket` | string | the rotation ticket counter (`INCR`) |
//! | `{p}:lease:<slot>` | string | the refresh lease's owner, with a TTL (`SET NX PX`) |

/// The keys of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub meta: String,
    pub ids: String,
    pub tok: String,
    pub gen: String,
    pub exp: String,
    pub dis: String,
    pub bans: String,
    pub by: String,
    pub ticket: String,
    /// `{p}:lease:` (the slot number follows).
    lease_prefix: String,
}

impl Keys {
    /// The keys of pool `pool`. A pool name must not hold `{` or `}` (it is the hash tag):
    /// [`valid_pool_name`] says so.
    pub fn new(pool: &str) -> Keys {
        let k = |name: &str| format!("{{{pool}}}:{name}");
        Keys {
            meta: k("meta"),
            ids: k("ids"),
            tok: k("tok"),
            gen: k("gen"),
            exp: k("exp"),
            dis: k("dis"),
            bans: k("bans"),
            by: k("by"),
            ticket: k("ticket"),
            lease_prefix: k("lease:"),
        }
    }

    pub fn lease(&self, slot: u64) -> String {
        format!("{}{slot}", self.lease_prefix)
    }
}

/// Whether `pool` can name a pool: 1 to 64 characters, none of them `{`, `}` or whitespace.
pub fn valid_pool_name(pool: &str) -> Result<(), String> {
    if pool.is_empty() || pool.len() > 64 {
        return Err(format!("pool name {pool:?}: expected 1 to 64 characters"));
    }
    if pool.chars().any(|c| c == '{' || c == '}' || c.is_whitespace()) {
        return Err(format!(
            "pool name {pool:?}: expected no braces (the name is the keys' hash tag) and no whitespace"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_carries_the_pool_as_its_hash_tag() {
        let k = Keys::new("main");
        for key in [
            &k.meta, &k.ids, &k.tok, &k.gen, &k.exp, &k.dis, &k.bans, &k.by, &k.ticket,
        ] {
            assert!(key.starts_with("{main}:"), "{key}");
        }
        assert_eq!(k.lease(7), "{main}:lease:7");
        assert!(valid_pool_name("main").is_ok());
        assert!(valid_pool_name("a{b").is_err());
        assert!(valid_pool_name("").is_err());
    }
}
