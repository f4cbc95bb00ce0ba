//! `--names`: how a URL becomes a path under `-o DIR`.
//!
//! - [`Layout::Hashed`] (the default): one flat, collision-free name per URL
//!   ([`save::name_for`]).
//! - [`Layout::Tree`]: `HOST[_PORT]/path/to/file`, as `wget -x` saves; a path
//!   ending in `/` is saved as [`INDEX`] in that folder.
//! - [`Layout::Flat`]: the last path segment only, as `wget -nd` saves.
//!
//! Whatever the URL holds, every name stays inside DIR: each component is a
//! plain name, percent-decoded for readability and then made safe. A `/`,
//! `\`, NUL or control character becomes `_`; a component that would start
//! with `.` starts with `_` instead (so no saved name is hidden, and none
//! can be taken for fetchpool's own `.fetchpool-*` files); `.` and `..`
//! cannot remain; a component longer than [`MAX_COMPONENT`] bytes is cut
//! and given a hash of the whole; device names reserved on Windows (`CON`,
//! `NUL`, `COM1`, ...) get a trailing `_`.
//!
//! Two entries of one run that would get the same name are told apart by a
//! suffix `-N` (N from 2) before the extension, in input order: the input
//! stage claims each name ([`Namer::claim`]) before the entry is fetched.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use sha2::{Digest, Sha256};

use super::save;

/// The file name of a path that ends in `/`.
pub const INDEX: &str = "index.html";
/// Longest component of a tree or flat name, in bytes.
pub const MAX_COMPONENT: usize = 200;

/// How saved files are named (`--names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Slug and hash, one flat folder: collision-free, safe, unreadable.
    #[default]
    Hashed,
    /// `HOST[_PORT]/path/to/file`.
    Tree,
    /// The last path segment.
    Flat,
}

/// The path, relative to DIR, of the `repeat`-th name taken for a URL:
/// `text` as given, `uri` as it is requested. `repeat` 0 is the plain name.
pub fn relative_name(layout: Layout, text: &str, uri: &http::Uri, repeat: u32) -> String {
    match layout {
        Layout::Hashed => save::name_for(text, repeat),
        Layout::Tree => with_suffix(&tree(uri), repeat),
        Layout::Flat => with_suffix(&flat(uri), repeat),
    }
}

/// `HOST[_PORT]/segments.../last[?query]`.
fn tree(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("_");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut out = component(&host.replace(':', "_"));
    if let Some(port) = uri.port_u16() {
        out.push_str(&format!("_{port}"));
    }
    let path = uri.path();
    let mut segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.pop().unwrap_or("");
    for segment in segments.iter().filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(&component(&decode(segment)));
    }
    out.push('/');
    out.push_str(&file_component(last, uri.query()));
    out
}

/// The last path segment (with the query), or [`INDEX`].
fn flat(uri: &http::Uri) -> String {
    let last = uri.path().rsplit('/').next().unwrap_or("");
    file_component(last, uri.query())
}

/// The file's own name: the decoded last segment, `?query` kept as wget
/// keeps it, [`INDEX`] when the segment is empty.
fn file_component(last: &str, query: Option<&str>) -> String {
    let mut name = if last.is_empty() {
        INDEX.to_owned()
    } else {
        decode(last).into_owned()
    };
    if let Some(q) = query {
        name.push('?');
        name.push_str(&decode(q));
    }
    component(&name)
}

/// Percent-decodes `s`; bytes that are not UTF-8 become U+FFFD.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// One safe path component (see the module docs).
fn component(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' | '\0' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    if s.is_empty() {
        s.push('_');
    }
    if is_reserved(&s) {
        s.push('_');
    }
    if s.len() > MAX_COMPONENT {
        let hash = save::hex(&Sha256::digest(raw.as_bytes())[..8]);
        let mut cut = MAX_COMPONENT - hash.len() - 1;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('-');
        s.push_str(&hash);
    }
    s
}

/// A device name Windows reserves, with or without an extension.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit())
}

/// `name` with `-N` (N = `repeat` + 1) before the extension of its last
/// component; `name` itself for `repeat` 0.
fn with_suffix(name: &str, repeat: u32) -> String {
    if repeat == 0 {
        return name.to_owned();
    }
    let suffix = format!("-{}", u64::from(repeat) + 1);
    let file_start = name.rfind('/').map_or(0, |i| i + 1);
    let file = &name[file_start..];
    let stem_end = match file.rfind('.') {
        Some(dot) if dot > 0 => file_start + dot,
        _ => name.len(),
    };
    format!("{}{suffix}{}", &name[..stem_end], &name[stem_end..])
}

/// Hands out the names of one run in input order, so that no two entries
/// save to the same path: the first entry gets the plain name, a later one
/// whose name is taken the first free `-N` form. Remembers a 128-bit hash
/// per name (about 16 bytes per saved entry).
pub struct Namer {
    layout: Layout,
    taken: HashSet<u128>,
    /// Per plain name found taken, the first `repeat` not yet tried, so a
    /// URL listed many times costs one try per entry.
    next: HashMap<u128, u32>,
    hashers: (RandomState, RandomState),
}

impl Namer {
    /// A namer for `layout`.
    pub fn new(layout: Layout) -> Self {
        Namer {
            layout,
            taken: HashSet::new(),
            next: HashMap::new(),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// Claims a name for the URL `text` (requested as `uri`) and returns
    /// its `repeat`, to be given back to [`relative_name`].
    pub fn claim(&mut self, text: &str, uri: &http::Uri) -> u32 {
        let plain = self.key(&relative_name(self.layout, text, uri, 0));
        if self.taken.insert(plain) {
            return 0;
        }
        // Taken: the first free -N form, from where the last search ended.
        let mut repeat = self.next.get(&plain).copied().unwrap_or(1);
        loop {
            let key = self.key(&relative_name(self.layout, text, uri, repeat));
            repeat = repeat.saturating_add(1);
            if self.taken.insert(key) || repeat == u32::MAX {
                self.next.insert(plain, repeat);
                return repeat - 1;
            }
        }
    }

    fn key(&self, name: &str) -> u128 {
        let (a, b) = &self.hashers;
        (u128::from(a.hash_one(name)) << 64) | u128::from(b.hash_one(name))
    }
}

impl crate::input::Claim for Namer {
    fn claim(&mut self, text: &str, uri: &http::Uri) -> u32 {
        Namer::claim(self, text, uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(layout: Layout, url: &str) -> String {
        let uri: http::Uri = url.parse().unwrap();
        relative_name(layout, url, &uri, 0)
    }

    #[test]
    fn tree_names_follow_host_port_and_path() {
        assert_eq!(name(Layout::Tree, "http://h/a/b.txt"), "h/a/b.txt");
        assert_eq!(
            name(Layout::Tree, "http://h:8080/a/"),
            "h_8080/a/index.html"
        );
        assert_eq!(name(Layout::Tree, "http://h/"), "h/index.html");
        assert_eq!(name(Layout::Tree, "http://h/a%20b/c?x=1"), "h/a b/c?x=1");
        assert_eq!(name(Layout::Tree, "http://[::1]:81/x"), "__1_81/x");
    }

    #[test]
    fn flat_names_are_the_last_segment() {
        assert_eq!(name(Layout::Flat, "http://h/a/b.txt"), "b.txt");
        assert_eq!(name(Layout::Flat, "http://h/a/"), "index.html");
        assert_eq!(name(Layout::Flat, "http://h/x?q=%2F"), "x?q=_");
    }

    #[test]
    fn hostile_paths_stay_inside_dir() {
        for url in [
            "http://h/%2e%2e/%2e%2e/etc/passwd",
            "http://h/a/%2e%2e%2f%2e%2e%2fx",
            "http://h/..%2f..%2fx",
            "http://h/%00/%0a%1b/x",
            "http://h/.hidden/.fetchpool-meta-x",
            "http://h/a%5c..%5c..%5cx",
        ] {
            for layout in [Layout::Tree, Layout::Flat] {
                let n = name(layout, url);
                for part in n.split('/') {
                    assert!(
                        !part.is_empty() && part != "." && part != "..",
                        "{url} -> {n}"
                    );
                    assert!(!part.starts_with('.'), "{url} -> {n}");
                    assert!(!part.contains(['\\', '\0']), "{url} -> {n}");
                    assert!(!part.chars().any(char::is_control), "{url} -> {n}");
                }
            }
        }
        assert_eq!(name(Layout::Flat, "http://h/..%2fx"), "_._x");
    }

    #[test]
    fn long_and_reserved_components_are_made_safe() {
        let long = format!("http://h/{}/{}", "a".repeat(300), "é".repeat(300));
        let n = name(Layout::Tree, &long);
        assert!(n.split('/').all(|p| p.len() <= MAX_COMPONENT), "{n}");
        let other = format!("http://h/{}b/x", "a".repeat(300));
        assert_ne!(
            name(Layout::Tree, &long).split('/').nth(1),
            name(Layout::Tree, &other).split('/').nth(1)
        );
        assert_eq!(name(Layout::Flat, "http://h/con.txt"), "con.txt_");
        assert_eq!(name(Layout::Flat, "http://h/COM1"), "COM1_");
        assert_eq!(name(Layout::Flat, "http://h/COMA"), "COMA");
    }

    #[test]
    fn the_namer_never_hands_out_a_name_twice() {
        let mut namer = Namer::new(Layout::Flat);
        let mut claim = |url: &str| {
            let uri: http::Uri = url.parse().unwrap();
            let repeat = namer.claim(url, &uri);
            relative_name(Layout::Flat, url, &uri, repeat)
        };
        assert_eq!(claim("http://h/x/a.txt"), "a.txt");
        assert_eq!(claim("http://h/y/a.txt"), "a-2.txt");
        // A URL whose own name is an earlier suffixed one moves on.
        assert_eq!(claim("http://h/z/a-2.txt"), "a-2-2.txt");
        assert_eq!(claim("http://h/a"), "a");
        assert_eq!(claim("http://g/a"), "a-2");
        assert_eq!(claim("http://h/x/a.txt"), "a-3.txt");
    }
}
