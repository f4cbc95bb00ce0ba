//! One URL, fetched: retries, deadlines, streaming the body, classifying
//! failures. Knows nothing of terminals or output formats.
//!
//! One [`Fetcher`] holds the single `ureq::Agent` every worker shares, so
//! connections are kept alive and reused across workers; `agent` sets it up
//! (ureq 3's defaults do not suit a fetcher: see `docs/ureq.md`). This
//! folder is the only place that names ureq: the rest of the program sees
//! [`Fetched`] and the `http` crate's types.
//!
//! Redirects are followed here (`redirect`), not by ureq, and the proxy of
//! each request is chosen here ([`ProxyConfig`]) and set on that request,
//! so the one agent and its connection pool serve every route.
//!
//! [`Fetcher`] and all its methods live in this file: a step, an attempt,
//! the response. The other files are its parts, each with types of its
//! own, and none of them names `Fetcher`: `step` what a fetch keeps between
//! its attempts, `redirect` the chain of requests, `send` one request,
//! `body` reading a body, `conditional` `--update`'s requests, `ranged`
//! `--continue`'s, `classify` error kinds, `retry` backoff, `config` the
//! settings, and `net` the connection layer.

mod body;
mod classify;
mod conditional;
pub mod config;
mod decode;
pub(crate) mod net;
mod ranged;
mod redirect;
mod retry;
mod send;
pub mod step;

use net::{agent, proxy};

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::Receiver;
use ureq::Agent;
use ureq::Proxy;
use ureq::http::{Method, Response, Uri};

use crate::control::host::{Answer, Signal};
use crate::result::Fetched;
use crate::result::accept::Accept;
use crate::store::StoreConfig;
use crate::store::resume::Found;
use crate::store::save::Unfinished;
use crate::text::redact;
use body::BodyReader;
use conditional::Conditional;
pub use config::{FetchConfig, RequestConfig};
pub use proxy::ProxyConfig;
use redirect::{Failed, Landed};
use retry::backoff;
use send::Sender;
use step::{Budget, Retry, trace_retry, with_timings};
pub use step::{FetchState, Stepped};

/// Fetches URLs with one shared agent; cheap to share between workers.
pub struct Fetcher {
    agent: Agent,
    /// ureq's form of each of `config.proxy.proxies()`, in the same order,
    /// with how messages name it.
    proxies: Vec<(Proxy, String)>,
    config: RequestConfig,
    store: StoreConfig,
    /// The temporary files being written, for the run to remove if it
    /// stops waiting.
    unfinished: Unfinished,
    accept: Accept,
    /// Never receives; disconnected when the run stops waiting (the grace
    /// after a signal is over), which ends body reads.
    cancel: Receiver<()>,
    /// Header values to keep out of messages.
    secrets: Vec<String>,
}

/// Where an attempt's body is saved: the entry's name under `-o`, and
/// the part file the answer continues, if it does.
#[derive(Clone, Copy)]
struct Saved<'a> {
    name: Option<&'a str>,
    resumed: Option<&'a Found>,
}

/// How one attempt ended.
enum Attempt {
    /// A final answer (success, a failure not worth retrying, or out of tries).
    Done(Fetched),
    /// Worth another try, as the [`Retry`] says.
    Retry(Fetched, Retry),
}

impl Fetcher {
    /// Builds the shared agent from `config`, its connection pool sized for
    /// `workers`. Fails only on a bad `--cacert` (or a proxy ureq cannot
    /// take, which `ProxyConfig` already ruled out). `cancel` is never
    /// sent on; its disconnection tells the fetcher to drop bodies being
    /// read (waits between attempts are the pool's, which a stop ends). Temporary files are
    /// listed in `unfinished` while they are written.
    pub fn new(
        config: FetchConfig,
        workers: NonZeroUsize,
        cancel: Receiver<()>,
        unfinished: Unfinished,
    ) -> Result<Self> {
        let FetchConfig {
            request: mut config,
            store,
            accept,
            // --rate is the pool's pacing, not the fetcher's.
            rate: _,
        } = config;
        if config.compressed
            && !config
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"))
        {
            config
                .headers
                .push(("Accept-Encoding".into(), decode::ACCEPT_ENCODING.into()));
        }
        let agent = agent::build(&config, workers)?;
        let proxies = config
            .proxy
            .proxies()
            .iter()
            .map(|p| Ok((proxy::ureq_proxy(p)?, p.to_string())))
            .collect::<Result<_>>()?;
        let secrets = config
            .headers
            .iter()
            .filter(|(name, _)| redact::is_secret_header(name))
            .map(|(_, value)| value.clone())
            .chain(config.proxy.secrets().map(str::to_owned))
            .chain(config.secrets.iter().cloned())
            .collect();
        Ok(Fetcher {
            agent,
            proxies,
            config,
            store,
            unfinished,
            accept,
            cancel,
            secrets,
        })
    }

    /// Makes the next attempt of the fetch of `uri` (see
    /// [`crate::input::url::check`]); `url` is the URL as given, which names
    /// a saved file, and `repeat` how many entries before it had the same
    /// URL (each repeat is saved under a name of its own). Returns the
    /// result, or when to step again, and what the answer (if one came) said
    /// about the host. Never waits; `held` is how long the pool held the
    /// step back (for `waited_ms`). Never panics on anything a server sends.
    pub fn step(
        &self,
        uri: &Uri,
        url: &str,
        repeat: u32,
        state: &mut FetchState,
        held: Duration,
    ) -> (Stepped, Option<Signal>) {
        state.waited += held;
        // No retry starts past the deadline (the host's pause or rate may
        // have held it that long): the last answer stands.
        if let Some(end) = state.deadline
            && Instant::now() > end + step::DEADLINE_SLACK
            && let Some(f) = state.failed.take()
        {
            return (Stepped::Done(self.finish(f, state, uri, url)), None);
        }
        state.attempts += 1;
        state.start.get_or_insert_with(Instant::now);
        let budget = Budget::new(&self.config, state);
        let sent = Instant::now();
        // A part file is continued with --continue, or when an earlier
        // attempt of this run left it.
        let resume = self.store.resume || state.attempts > 1;
        let (attempt, answer) = self.attempt(uri, url, repeat, &budget, resume);
        let mut signal = answer.map(|answer| Signal {
            sent,
            latency: step::latency(),
            answer,
        });
        let now = Instant::now();
        if let Some(Answer::Pushback { .. }) = answer {
            state
                .deadline
                .get_or_insert(now + self.config.max_retry_wait);
        }
        let (f, Retry { after, free }) = match attempt {
            Attempt::Done(f) => {
                let f = with_timings(f);
                return (Stepped::Done(self.finish(f, state, uri, url)), signal);
            }
            Attempt::Retry(f, retry) => (step::judged(with_timings(f), &self.accept), retry),
        };
        if !free {
            state.charged += 1;
        }
        let wait = after.unwrap_or_else(|| backoff(state.charged.max(1)));
        if state.deadline.is_some_and(|end| now + wait > end) {
            return (Stepped::Done(self.finish(f, state, uri, url)), signal);
        }
        // Waiting for the time a pushback asked for is being held back by
        // the host (the pool counts any wait beyond it).
        state.ahead = Duration::ZERO;
        if let Some(Answer::Pushback { .. }) = answer {
            state.waited += wait;
            state.ahead = wait;
        }
        // A 429 that did not say for how long: leave the host alone for as
        // long as this entry waits.
        if let Some(Signal {
            answer:
                Answer::Pushback {
                    pause: pause @ None,
                    status: 429,
                    ..
                },
            ..
        }) = &mut signal
        {
            *pause = Some(wait);
        }
        let so_far = self.finish(f.clone(), state, uri, url);
        trace_retry(&so_far, free, wait);
        state.failed = Some(f);
        (
            Stepped::Again {
                at: now + wait,
                so_far,
            },
            signal,
        )
    }

    /// Ends an entry of a host that was given up: with its own last
    /// answer if it had one, else with the host's last refusal `status`
    /// (not ok, no request made).
    pub fn given_up(
        &self,
        uri: &Uri,
        url: &str,
        state: &mut FetchState,
        status: u16,
        held: Duration,
    ) -> Fetched {
        state.waited += held;
        let f = state.failed.take().unwrap_or_else(|| Fetched {
            status: Some(status),
            ..Fetched::default()
        });
        self.finish(f, state, uri, url)
    }

    /// `fetched` as a result: its attempts, elapsed time and scrubbed message.
    fn finish(&self, mut fetched: Fetched, state: &FetchState, uri: &Uri, url: &str) -> Fetched {
        fetched.attempts = state.attempts;
        fetched.elapsed = state.start.map_or(Duration::ZERO, |s| s.elapsed());
        fetched.waited = state.waited;
        if let Some(err) = &mut fetched.error {
            err.message = self.scrub(&err.message, uri, url);
        }
        fetched
    }

    /// One attempt: the request and its redirects, then the body, all
    /// within `--timeout`; retried as `budget` allows. Also what the answer
    /// said about its host, when one came. `repeat` is as for `fetch`;
    /// `resume` allows continuing a part file of the entry's name.
    fn attempt(
        &self,
        uri: &Uri,
        url: &str,
        repeat: u32,
        budget: &Budget,
        resume: bool,
    ) -> (Attempt, Option<Answer>) {
        // A proxy variable that cannot be used: no attempt is worth making.
        if let Err(error) = self.sender().proxy_for(uri) {
            let fetched = Fetched {
                error: Some(error),
                ..Fetched::default()
            };
            return (Attempt::Done(fetched), None);
        }
        let name = self.store.save_name(url, uri, repeat);
        let conditional =
            Conditional::new(name.as_deref(), &self.config, &self.store, &self.unfinished);
        let extra = conditional.as_ref().map_or_else(Vec::new, |c| c.headers());
        // --update's validators win: a part file is of no use to a 304.
        let resume = extra
            .is_empty()
            .then(|| {
                ranged::resumable(
                    &self.config,
                    &self.store,
                    &self.accept,
                    name.as_deref(),
                    resume,
                )
            })
            .flatten();
        // -m bounds the exchange, not the hash check of a saved file above.
        let deadline = Instant::now() + self.config.timeout;
        let send = |headers: &[(String, String)]| self.send_following(uri, deadline, headers);
        let (sent, resumed) = ranged::send(send, &extra, resume, || {
            ranged::forget(&self.store, name.as_deref());
        });
        let (response, final_url) = match sent {
            Ok(Landed {
                response,
                final_url,
            }) => (response, final_url),
            Err(Failed {
                error,
                status,
                final_url,
            }) => {
                let retry = budget.retries_error() && error.kind.is_retryable();
                // A redirect that could not be followed was an answer; no
                // answer at all may say the host is overloaded.
                let answer = match status {
                    Some(s) => Some(step::answer(
                        s,
                        &ureq::http::HeaderMap::new(),
                        self.accept.contains(s),
                    )),
                    None if error.kind.is_overload() => Some(Answer::Overload),
                    None => None,
                };
                let fetched = Fetched {
                    error: Some(error),
                    status,
                    final_url,
                    ..Fetched::default()
                };
                let attempt = if retry {
                    Attempt::Retry(fetched, Retry::BACKOFF)
                } else {
                    Attempt::Done(fetched)
                };
                return (attempt, answer);
            }
        };
        let saved = Saved {
            name: name.as_deref(),
            resumed: resumed.as_ref(),
        };
        self.on_response(saved, budget, conditional, response, final_url)
    }

    /// Sends `uri` and follows its redirects, `extra` headers going with
    /// every request of the chain, which must end by `deadline`.
    fn send_following(
        &self,
        uri: &Uri,
        deadline: Instant,
        extra: &[(String, String)],
    ) -> Result<Landed, Failed> {
        let sender = self.sender();
        let send = |uri: &Uri, method: &Method, hop| sender.send(uri, method, hop, extra);
        redirect::follow(&self.config, uri, deadline, send)
    }

    /// What sends one request: the agent, the proxies and the settings.
    fn sender(&self) -> Sender<'_> {
        Sender {
            agent: &self.agent,
            proxies: &self.proxies,
            config: &self.config,
            cancel: &self.cancel,
        }
    }

    /// The rest of an attempt once a response has come: `--update`'s 304,
    /// a retry, or the body. Out of line: its locals would otherwise sit in
    /// the frame under the whole send path (ureq's frames are deep), and a
    /// thousand workers each keep every stack page they ever touched.
    #[inline(never)]
    fn on_response(
        &self,
        saved: Saved<'_>,
        budget: &Budget,
        conditional: Option<Conditional<'_>>,
        response: Response<ureq::Body>,
        final_url: Option<String>,
    ) -> (Attempt, Option<Answer>) {
        let status = response.status();
        let accepted = self.accept.contains(status.as_u16());
        let answer = Some(step::answer(status.as_u16(), response.headers(), accepted));
        if let Some(unchanged) = conditional
            .as_ref()
            .and_then(|c| c.unchanged(status, self.store.sha256))
        {
            body::drain(response);
            return (
                Attempt::Done(Fetched {
                    final_url,
                    ..unchanged
                }),
                answer,
            );
        }
        let validators = conditional
            .as_ref()
            .and_then(|c| c.validators(response.headers()));
        // A status the user accepts is a success: never retried.
        if !accepted && let Some(retry) = budget.retries_status(status.as_u16(), response.headers())
        {
            let bytes = body::drain(response);
            let fetched = Fetched {
                status: Some(status.as_u16()),
                bytes,
                wire_bytes: bytes,
                final_url,
                ..Fetched::default()
            };
            return (Attempt::Retry(fetched, retry), answer);
        }
        let reader = BodyReader {
            config: &self.config,
            store: &self.store,
            accept: &self.accept,
            unfinished: &self.unfinished,
            cancel: &self.cancel,
        };
        let mut fetched = reader.read_body(saved.name, saved.resumed, status, response);
        fetched.status = Some(status.as_u16());
        fetched.final_url = final_url;
        if let Some(c) = conditional {
            c.saved(&fetched, validators);
        }
        let attempt = match &fetched.error {
            // A body that stalled past the deadline is retried like a server
            // that never answered; one cut short whose bytes were kept is
            // retried too, since the retry asks only for the rest.
            Some(e) if budget.retries_error() && (e.kind.is_retryable() || fetched.kept_part) => {
                Attempt::Retry(fetched, Retry::BACKOFF)
            }
            Some(_) => Attempt::Done(fetched),
            None => {
                fetched.ok = self.accept.contains(status.as_u16());
                Attempt::Done(fetched)
            }
        };
        (attempt, answer)
    }

    /// Removes secrets a library message might carry: header values, and
    /// the URL's password as given and as sent (percent-encoded).
    fn scrub(&self, message: &str, uri: &Uri, url: &str) -> String {
        let sent = uri.to_string();
        let mut secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        secrets.extend(redact::password(url));
        secrets.extend(redact::password(&sent));
        redact::scrub(message, &secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_the_password_as_given_and_as_sent() {
        let (_cancel, cancelled) = crossbeam_channel::bounded(0);
        let fetcher = Fetcher::new(
            FetchConfig::for_tests(),
            NonZeroUsize::MIN,
            cancelled,
            Unfinished::default(),
        )
        .unwrap();
        let given = "http://u:p w\u{e9}@h/";
        let uri = crate::input::url::check(given).unwrap();
        assert_eq!(uri.to_string(), "http://u:p%20w%C3%A9@h/");
        let message = "failed: http://u:p%20w%C3%A9@h/ (p w\u{e9})";
        assert_eq!(
            fetcher.scrub(message, &uri, given),
            "failed: http://u:***@h/ (***)"
        );
    }
}
