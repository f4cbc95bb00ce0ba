//! Exit codes as the contract's table gives them, where a reader that went
//! away could blur them: a closed stdout (in `trust`) and a closed stderr
//! still end with the code of what happened, never 0 for failures and
//! never a panic.

use std::process::Stdio;

use crate::raw::{RawServer, respond};
use crate::{command, wait_bounded};

#[test]
fn a_closed_stderr_keeps_the_exit_code_and_never_panics() {
    let server = RawServer::start(|_, s, _| respond(s, 500, &[], b"oops"));
    let url = server.url("/e");
    for (args, code) in [
        (vec!["--retries", "0", url.as_str()], 1),
        (
            vec!["--retries", "0", "--progress", "plain", url.as_str()],
            1,
        ),
        (vec!["-j", "0"], 2),
    ] {
        let mut cmd = command(&args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // The reading end closed before fetchpool writes a byte to it.
        drop(child.stderr.take());
        let status = wait_bounded(&mut child);
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

#[test]
fn an_empty_list_is_exit_0() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = crate::run(&["-i", empty.path().to_str().unwrap()]);
    out.assert_code(0);
    assert!(
        out.stderr.starts_with("summary: 0 entries"),
        "{}",
        out.stderr
    );
}
