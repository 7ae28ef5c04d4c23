//! The fuzz targets on stable Rust, bounded: every file of the fuzz corpus (`fuzz/corpus/<target>/`)
//! and a few thousand deterministic mutations of them go through the same target functions that
//! `cargo fuzz` runs (`credpool::fuzzing`). A panic is a failure, as it is for the fuzzer: a parser
//! that panicked, an error without a position, or a round trip that lost an account.
//!
//! Mutations are seeded (SplitMix64), so a failure names the corpus file, the mutation number and
//! the input, and is repeatable. This is the short version that runs in CI; `cargo +nightly fuzz
//! run <target>` is the long one.

use credpool::fuzzing;
use std::path::{Path, PathBuf};

/// Mutations per corpus file and target.
const MUTATIONS: u64 = 300;

/// Fragments that a TOML parser and the validators must handle at any place.
const TOKENS: &[&str] = &[
    "[[accounts]]\n",
    "[pool]\n",
    "[[upstream.faults]]\n",
    "=",
    "\"",
    "'",
    "\"\"\"",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "#",
    ",",
    ".",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "1e999",
    "nan",
    "inf",
    "\"-5s\"",
    "\"400d\"",
    "\"\"",
    "true",
    "1979-05-27T07:32:00Z",
    "\u{0}",
    "\u{feff}",
    "é",
    "\r\n",
    "\t",
    "\\u0000",
    "a.b.c = 1\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `input`: a bit flip, a byte deleted or inserted, a truncation, a token
/// inserted, a line duplicated or dropped, or a splice with another corpus file. Often several.
fn mutate(input: &[u8], others: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                v.remove(rng.below(v.len()));
            }
            2 => v.insert(at, rng.next() as u8),
            3 => v.truncate(at),
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            5 => {
                // Duplicate or drop one line.
                let text = String::from_utf8_lossy(&v).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let i = rng.below(lines.len());
                if rng.below(2) == 0 {
                    lines.insert(i, lines[i]);
                } else {
                    lines.remove(i);
                }
                v = lines.join("\n").into_bytes();
            }
            _ => {
                let other = &others[rng.below(others.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{target}: a handful of seed files expected");
    files
}

/// Runs `target` over its corpus and the mutations; returns how many inputs it saw.
fn run(target: &str, f: fn(&[u8])) -> u64 {
    let files = corpus(target);
    let others: Vec<Vec<u8>> = files.iter().map(|(_, b)| b.clone()).collect();
    let mut inputs = 0;
    for (k, (path, bytes)) in files.iter().enumerate() {
        f(bytes);
        inputs += 1;
        let mut rng = Rng(0xC0FFEE ^ (k as u64) << 32);
        for m in 0..MUTATIONS {
            let input = mutate(bytes, &others, &mut rng);
            let outcome = std::panic::catch_unwind(|| f(&input));
            if outcome.is_err() {
                panic!(
                    "{target}: mutation {m} of {} broke the contract; input:\n{:?}",
                    path.display(),
                    String::from_utf8_lossy(&input)
                );
            }
            inputs += 1;
        }
    }
    inputs
}

#[test]
fn scenario_parser_survives_its_corpus_and_mutations() {
    let n = run("scenario_parse", fuzzing::scenario_parse);
    assert!(n >= 2000, "{n}");
}

#[test]
fn accounts_parser_survives_its_corpus_and_mutations() {
    let n = run("accounts_parse", fuzzing::accounts_parse);
    assert!(n >= 1000, "{n}");
}

#[test]
fn accounts_round_trip_keeps_every_account() {
    let n = run("accounts_round_trip", fuzzing::accounts_round_trip);
    assert!(n >= 1000, "{n}");
}

#[test]
fn the_targets_do_reject_what_they_should() {
    // The contract checks can fail: an unlocated error for a non-blank file is caught.
    let e = credpool::input_error::InputError::whole_file(Path::new(fuzzing::FUZZ_PATH), "boom");
    assert!(std::panic::catch_unwind(|| fuzzing::assert_located(&e, "x = 1")).is_err());
    let e = credpool::input_error::InputError::at(Path::new("other.toml"), "x", None, "boom");
    assert!(std::panic::catch_unwind(|| fuzzing::assert_located(&e, "x")).is_err());
    // And a well-formed input passes through every target.
    fuzzing::accounts_round_trip(b"[[accounts]]\nemail = \"a@example.com\"\nerror_codes = [500]\n");
}
