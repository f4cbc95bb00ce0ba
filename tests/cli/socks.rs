//! SOCKS5 proxies (`socks5://`, `socks5h://`), from `--proxy` and from the
//! environment, through a SOCKS5 server written for the tests; and a proxy
//! variable fetchpool cannot use, which fails only the URLs it serves.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::server::{Reply, Request, TestServer};
use crate::{Running, command, kind, run};

/// A SOCKS5 server on 127.0.0.1 (RFC 1928, with RFC 1929 log-in when
/// `login` is set). It records each CONNECT target as `ip:port` or
/// `name:port` and always connects to 127.0.0.1 at the port asked for, so
/// nothing leaves this machine; a name is never resolved.
struct Socks5 {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    logins: Arc<Mutex<Vec<(String, String)>>>,
}

impl Socks5 {
    fn start(login: bool) -> Socks5 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let logins = Arc::new(Mutex::new(Vec::new()));
        let (t, l) = (Arc::clone(&targets), Arc::clone(&logins));
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (t, l) = (Arc::clone(&t), Arc::clone(&l));
                thread::spawn(move || {
                    let _ = tunnel(client, login, &t, &l);
                });
            }
        });
        Socks5 {
            port,
            targets,
            logins,
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn tunnel(
    mut client: TcpStream,
    login: bool,
    targets: &Mutex<Vec<String>>,
    logins: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    let head = read_n(&mut client, 2)?;
    let methods = read_n(&mut client, usize::from(head[1]))?;
    let method = if login { 2 } else { 0 };
    if !methods.contains(&method) {
        return client.write_all(&[5, 0xff]);
    }
    client.write_all(&[5, method])?;
    if login {
        let ulen = read_n(&mut client, 2)?[1];
        let user = String::from_utf8_lossy(&read_n(&mut client, ulen.into())?).into_owned();
        let plen = read_n(&mut client, 1)?[0];
        let pass = String::from_utf8_lossy(&read_n(&mut client, plen.into())?).into_owned();
        logins.lock().unwrap().push((user, pass));
        client.write_all(&[1, 0])?;
    }
    let request = read_n(&mut client, 4)?;
    let host = match request[3] {
        1 => {
            let a = read_n(&mut client, 4)?;
            format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
        }
        3 => {
            let len = read_n(&mut client, 1)?[0];
            String::from_utf8_lossy(&read_n(&mut client, len.into())?).into_owned()
        }
        _ => return client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
    };
    let p = read_n(&mut client, 2)?;
    let port = u16::from_be_bytes([p[0], p[1]]);
    targets.lock().unwrap().push(format!("{host}:{port}"));
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut up_r, mut up_w) = (upstream.try_clone()?, upstream);
    let (mut c_r, mut c_w) = (client.try_clone()?, client);
    thread::spawn(move || std::io::copy(&mut up_r, &mut c_w));
    std::io::copy(&mut c_r, &mut up_w)?;
    Ok(())
}

fn site() -> TestServer {
    TestServer::routed(|_: &Request| Reply::ok(b"through"))
}

#[test]
fn socks5_resolves_here_and_socks5h_sends_the_name() {
    let (site, proxy) = (site(), Socks5::start(false));
    let out = run(&["--json", "--proxy", &proxy.url("socks5"), &site.url("/a")]);
    out.assert_code(0);
    assert_eq!(out.single()["status"], 200);
    // A name that resolves nowhere: only the proxy can reach it.
    let by_name = format!("http://no-such-host.invalid:{}/b", site.port());
    let out = run(&["--json", "-v", "--proxy", &proxy.url("socks5h"), &by_name]);
    out.assert_code(0);
    let tunnel = format!(
        "[0] * SOCKS5 proxy opened a tunnel to no-such-host.invalid:{}",
        site.port()
    );
    assert!(out.stderr.lines().any(|l| l == tunnel), "{}", out.stderr);
    assert!(
        !out.stderr.contains("resolved no-such-host"),
        "{}",
        out.stderr
    );
    assert_eq!(
        proxy.targets(),
        [
            format!("127.0.0.1:{}", site.port()),
            format!("no-such-host.invalid:{}", site.port())
        ]
    );
    let paths: Vec<String> = site.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(paths, ["/a", "/b"]);
}

#[test]
fn socks_from_the_environment_with_a_login_that_is_never_shown() {
    let (site, proxy) = (site(), Socks5::start(true));
    let with_login = format!("socks5h://alice:pr0xy-pw@127.0.0.1:{}", proxy.port);
    for var in ["all_proxy", "http_proxy"] {
        let mut cmd = command(["--json", "-v", &site.url("/env")]);
        cmd.env(var, &with_login);
        let out = Running::spawn(cmd, None).finish();
        out.assert_code(0);
        out.assert_absent("pr0xy-pw");
    }
    assert_eq!(
        *proxy.logins.lock().unwrap(),
        vec![("alice".to_owned(), "pr0xy-pw".to_owned()); 2]
    );
    assert_eq!(site.requests().len(), 2);
}

#[test]
fn an_unusable_proxy_variable_fails_only_the_urls_it_serves() {
    let site = site();
    let mut cmd = command(["--json", &site.url("/direct")]);
    cmd.env("all_proxy", "socks4://u:hunter2@127.0.0.1:1")
        .env("no_proxy", "127.0.0.1");
    let out = Running::spawn(cmd, None).finish();
    out.assert_code(0);
    assert_eq!(site.requests().len(), 1);
    let mut cmd = command(["--json", &site.url("/proxied")]);
    cmd.env("all_proxy", "socks4://u:hunter2@127.0.0.1:1");
    let out = Running::spawn(cmd, None).finish();
    out.assert_code(1);
    let r = out.single();
    assert_eq!(kind(&r), Some("connect"), "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("all_proxy") && message.contains("socks4"),
        "{r}"
    );
    out.assert_absent("hunter2");
    assert_eq!(site.requests().len(), 1, "the proxied URL reached the site");
}

#[test]
fn a_socks_refusal_is_kind_proxy_naming_its_reason() {
    let proxy = Socks5::start(false);
    let closed = crate::refused_port();
    let out = run(&[
        "--json",
        "--proxy",
        &proxy.url("socks5"),
        &format!("http://127.0.0.1:{closed}/"),
    ]);
    out.assert_code(1);
    let r = out.single();
    assert_eq!(
        kind(&r),
        Some("proxy"),
        "a refused tunnel is the proxy's answer: {r}"
    );
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("SOCKS5 proxy did not connect: connection refused"),
        "{r}"
    );
    assert_eq!(proxy.targets().len(), 1, "a refusal is not retried");
}
