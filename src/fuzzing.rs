//! The bodies of the fuzz targets, shared by `cargo fuzz` (`fuzz/`, nightly, libFuzzer) and the
//! bounded corpus test that runs on stable in CI (`tests/fuzz_corpus.rs`).
//!
//! Each target takes arbitrary bytes and panics (which is what a fuzzer reports) when a parser
//! breaks its contract: it must never panic itself, every error must be located (the file, and a
//! line and column inside the text) and say something, and what the accounts store writes back
//! must parse to the same accounts.

use crate::input_error::InputError;
use crate::model::AccountsFile;
use std::path::Path;

/// The file name every fuzzed input is given.
pub const FUZZ_PATH: &str = "fuzz.toml";

/// Checks an error's contract: it names [`FUZZ_PATH`], carries a position inside `text` (only a
/// blank file may be refused as a whole), and has a message.
pub fn assert_located(e: &InputError, text: &str) {
    assert_eq!(e.path, Path::new(FUZZ_PATH), "{e}");
    assert!(!e.message.trim().is_empty(), "an error without a message: {e:?}");
    match e.position {
        Some(p) => {
            let lines = text.split('\n').count();
            assert!(
                p.line >= 1 && p.line <= lines,
                "line {} outside 1..={lines}: {e}",
                p.line
            );
            assert!(p.column >= 1, "{e}");
            assert!(e
                .to_string()
                .starts_with(&format!("{FUZZ_PATH}:{}:{}: ", p.line, p.column)));
        }
        None => assert!(text.trim().is_empty(), "an unlocated error for a non-blank file: {e}"),
    }
}

/// `scenario::plan::parse` on any UTF-8 text.
pub fn scenario_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = crate::scenario::plan::parse(Path::new(FUZZ_PATH), text) {
        assert_located(&e, text);
    }
}

/// `AccountsFile::parse` on any UTF-8 text.
pub fn accounts_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = AccountsFile::parse(Path::new(FUZZ_PATH), text) {
        assert_located(&e, text);
    }
}

/// parse -> `to_toml_string` -> parse keeps every account, and writing again changes nothing.
pub fn accounts_round_trip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new(FUZZ_PATH);
    let Ok(mut file) = AccountsFile::parse(path, text) else {
        return;
    };
    let written = file.to_toml_string();
    let mut again = AccountsFile::parse(path, &written)
        .unwrap_or_else(|e| panic!("the store wrote a file it cannot read back: {e}\n{written}"));
    assert_eq!(
        again.accounts, file.accounts,
        "accounts changed in a round trip:\n{written}"
    );
    assert_eq!(again.to_toml_string(), written, "a second write changed the file");
}
