//! A URL argument that is not UTF-8 is an entry like a line of a list: an
//! `invalid_url` result, the run going on, its bytes kept for
//! `--write-failed`; never a usage error for the whole run.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::server::TestServer;
use crate::{command, kind};

#[test]
fn a_url_argument_that_is_not_utf8_is_an_invalid_url_entry() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let failed = dir.path().join("failed");
    let bad = b"http://127.0.0.1/caf\xe9".to_vec();
    let mut cmd = command(["--json", "--write-failed", failed.to_str().unwrap()]);
    cmd.arg(server.url("/ok"))
        .arg(OsString::from_vec(bad.clone()));
    let out = crate::Running::spawn(cmd, None).finish();
    out.assert_code(1);
    let by_seq = out.by_seq();
    assert_eq!(by_seq.len(), 2, "{}", out.stdout_text());
    assert_eq!(by_seq[&0]["ok"], true);
    assert_eq!(kind(&by_seq[&1]), Some("invalid_url"));
    assert!(
        by_seq[&1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{}",
        by_seq[&1]
    );
    assert_eq!(
        std::fs::read(&failed).unwrap(),
        [bad, b"\n".to_vec()].concat()
    );
    assert_eq!(server.total_requests(), 1);
}
