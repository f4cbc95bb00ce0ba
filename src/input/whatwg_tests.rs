//! Our parser against the WHATWG URL test data (`urltestdata.json` of the
//! web-platform-tests, as shipped with the `url` crate; see
//! `tests/data/README.md`): every case that is an http or https URL on its
//! own must be accepted or rejected as the standard says, and accepted ones
//! sent as their `href` without the fragment.

use serde_json::Value;

use super::url::check;

const DATA: &str = include_str!("../../tests/data/urltestdata.json");

/// The input as the parser sees it: leading and trailing C0 controls and
/// spaces stripped, tabs and newlines removed, lowercased.
fn normalized(input: &str) -> String {
    input
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Whether the case is an absolute http/https URL whose result does not
/// depend on its base: no base at all, or `http://`/`https://` (two
/// slashes start the authority whatever the base is).
fn is_http_case(case: &Value) -> bool {
    let input = normalized(case["input"].as_str().unwrap_or(""));
    match case["base"].as_str() {
        None => input.starts_with("http:") || input.starts_with("https:"),
        Some(_) => input.starts_with("http://") || input.starts_with("https://"),
    }
}

/// How our answer may differ from the standard's, on purpose.
#[derive(Debug, PartialEq)]
enum Departure {
    /// WHATWG takes port 0; the contract says 1..=65535.
    PortZero,
    /// A host character WHATWG allows that an HTTP request cannot carry.
    HostCharacter,
}

struct Tally {
    cases: usize,
    accepted: usize,
    rejected: usize,
    departures: Vec<(String, Departure)>,
    disagreements: Vec<String>,
}

fn run_cases() -> Tally {
    let data: Vec<Value> = serde_json::from_str(DATA).expect("urltestdata.json is JSON");
    let mut tally = Tally {
        cases: 0,
        accepted: 0,
        rejected: 0,
        departures: Vec::new(),
        disagreements: Vec::new(),
    };
    for case in data.iter().filter(|c| c.is_object() && is_http_case(c)) {
        tally.cases += 1;
        let input = case["input"].as_str().unwrap_or_default();
        let ours = check(input).map(|uri| uri.to_string());
        // A serialized URL's first `#` starts its fragment (even an empty one).
        let expected = case["href"]
            .as_str()
            .map(|href| href.split('#').next().unwrap_or(href).to_owned());
        match (&ours, &expected) {
            (Ok(got), Some(want)) if got == want => tally.accepted += 1,
            (Err(_), None) => tally.rejected += 1,
            (Err(why), Some(_)) if case["port"] == "0" && why.contains("port 0") => {
                tally.departures.push((input.into(), Departure::PortZero));
            }
            (Err(why), Some(_)) if why.contains("cannot carry") => {
                tally
                    .departures
                    .push((input.into(), Departure::HostCharacter));
            }
            _ => tally
                .disagreements
                .push(format!("{input:?}: ours {ours:?}, WHATWG {expected:?}")),
        }
    }
    tally
}

#[test]
#[allow(clippy::print_stderr)] // the test's own report
fn agrees_with_the_whatwg_test_data() {
    let tally = run_cases();
    eprintln!(
        "WHATWG http/https cases: {} ({} accepted alike, {} rejected alike, {} departures: {:?})",
        tally.cases,
        tally.accepted,
        tally.rejected,
        tally.departures.len(),
        tally.departures
    );
    assert!(
        tally.disagreements.is_empty(),
        "{} disagreements:\n{}",
        tally.disagreements.len(),
        tally.disagreements.join("\n")
    );
    // The data set is not silently empty or cut.
    assert!(tally.cases >= 300, "only {} cases", tally.cases);
    assert!(tally.accepted >= 150 && tally.rejected >= 50);
}

#[test]
fn every_other_scheme_of_the_data_is_rejected() {
    let data: Vec<Value> = serde_json::from_str(DATA).expect("urltestdata.json is JSON");
    let others = data.iter().filter(|c| {
        c["base"].is_null()
            && c["protocol"]
                .as_str()
                .is_some_and(|p| p != "http:" && p != "https:")
    });
    let mut count = 0;
    for case in others {
        count += 1;
        let input = case["input"].as_str().unwrap_or_default();
        assert!(check(input).is_err(), "{input:?} was accepted");
    }
    assert!(count > 100, "only {count} cases");
}
