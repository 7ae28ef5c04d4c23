//! Reading the scripts' replies: a tag (`'ready'`, `'gone'`...) then fields, each a Redis
//! integer or bulk string. Kept apart from the connection code so every script is decoded the
//! same way and a malformed reply is a [`SharedError::Protocol`] naming the script, never a panic.

use super::shared_pool::SharedError;
use ::redis::Value;

/// One script's reply, read field by field.
pub struct Reply {
    script: &'static str,
    fields: std::vec::IntoIter<Value>,
}

impl Reply {
    /// `value` must be an array (every script answers one).
    pub fn new(script: &'static str, value: Value) -> Result<Reply, SharedError> {
        match value {
            Value::Array(fields) => Ok(Reply {
                script,
                fields: fields.into_iter(),
            }),
            other => Err(Self::error(script, &format!("expected an array, got {}", kind(&other)))),
        }
    }

    fn error(script: &str, what: &str) -> SharedError {
        SharedError::Protocol(format!("{script}.lua: {what}"))
    }

    fn next(&mut self, what: &str) -> Result<Value, SharedError> {
        self.fields
            .next()
            .ok_or_else(|| Self::error(self.script, &format!("the reply ends before {what}")))
    }

    /// A string field (`Nil` and a missing field are errors).
    pub fn string(&mut self, what: &str) -> Result<String, SharedError> {
        match self.next(what)? {
            Value::BulkString(b) => {
                String::from_utf8(b).map_err(|_| Self::error(self.script, &format!("{what} is not UTF-8")))
            }
            Value::SimpleString(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(Self::error(
                self.script,
                &format!("{what}: expected a string, got {}", kind(&other)),
            )),
        }
    }

    /// A string field that may be `Nil` or empty (`None` then).
    pub fn optional_string(&mut self, what: &str) -> Result<Option<String>, SharedError> {
        match self.next(what)? {
            Value::Nil => Ok(None),
            Value::BulkString(b) if b.is_empty() => Ok(None),
            Value::BulkString(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| Self::error(self.script, &format!("{what} is not UTF-8"))),
            Value::Int(i) => Ok(Some(i.to_string())),
            other => Err(Self::error(
                self.script,
                &format!("{what}: expected a string, got {}", kind(&other)),
            )),
        }
    }

    /// An integer field, sent as a Redis integer or as a decimal string.
    pub fn int(&mut self, what: &str) -> Result<i64, SharedError> {
        let script = self.script;
        match self.next(what)? {
            Value::Int(i) => Ok(i),
            Value::BulkString(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Self::error(script, &format!("{what}: expected an integer"))),
            other => Err(Self::error(
                script,
                &format!("{what}: expected an integer, got {}", kind(&other)),
            )),
        }
    }

    pub fn uint(&mut self, what: &str) -> Result<u64, SharedError> {
        let v = self.int(what)?;
        u64::try_from(v).map_err(|_| {
            Self::error(
                self.script,
                &format!("{what}: expected a non-negative integer, got {v}"),
            )
        })
    }

    /// An optional epoch-ms field (`Nil` or empty: none).
    pub fn optional_ms(&mut self, what: &str) -> Result<Option<i64>, SharedError> {
        match self.optional_string(what)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| Self::error(self.script, &format!("{what}: expected epoch milliseconds, got {s:?}"))),
        }
    }

    /// A nested array field, read as its own reply.
    pub fn nested(&mut self, what: &str) -> Result<Reply, SharedError> {
        let v = self.next(what)?;
        Reply::new(self.script, v)
    }

    /// Fields left unread.
    pub fn remaining(&self) -> usize {
        self.fields.len()
    }

    /// The error for an unknown tag.
    pub fn unknown(&self, tag: &str) -> SharedError {
        Self::error(self.script, &format!("unknown answer {tag:?}"))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a status",
        Value::Okay => "OK",
        _ => "another RESP type",
    }
}
