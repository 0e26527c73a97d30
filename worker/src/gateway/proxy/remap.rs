//! proxy.header's remapping, as lighttpd 1.4.69 applies it: map-urlpath on the
//! request target (and Destination, Content-Location) on the way in and on
//! Location, Content-Location and Set-Cookie's Path on the way out (the entry the
//! request matched first); map-host-request on Host and the authority of those
//! URLs on the way in, map-host-response on the way out (and Set-Cookie's
//! Domain); https-remap turns an https request's URLs to http:// for the backend
//! and the backend's http:// ones back to https://. Matching is by prefix for
//! paths (byte for byte) and whole and case-blind for hosts.

use super::opts::Header;
use std::rc::Rc;

/// One request's remapping: what matched on the way in decides the way back.
#[derive(Debug)]
pub struct Remap {
    h: Rc<Header>,
    /// The client's Host.
    http_host: Option<String>,
    /// The first host map-host-request put in the client's place.
    sent_host: Option<String>,
    /// The map-urlpath entry the request matched first.
    sent_path: Option<usize>,
    /// https-remap in force (set and the request came over https).
    https: bool,
}

impl Remap {
    pub fn new(h: Rc<Header>, http_host: Option<String>, https: bool) -> Remap {
        let https = https && h.https_remap;
        Remap {
            h,
            http_host,
            sent_host: None,
            sent_path: None,
            https,
        }
    }

    pub fn header(&self) -> &Header {
        &self.h
    }

    /// The replacement of authority `a`, `req`uest or response side; None: keep
    /// it.
    pub fn host(&mut self, a: &str, req: bool) -> Option<String> {
        let h = self.h.clone();
        let list = if req {
            &h.hosts_request
        } else {
            &h.hosts_response
        };
        for (k, v) in list {
            let key = if k == "-" {
                // The client's Host; on the way back, the host sent in its place.
                let m = match (&self.sent_host, req) {
                    (Some(s), false) => Some(s.as_str()),
                    _ => self.http_host.as_deref(),
                };
                match m {
                    Some(m) => m,
                    None => continue,
                }
            } else {
                k.as_str()
            };
            if !a.eq_ignore_ascii_case(key) {
                continue;
            }
            if v == "-" {
                return self.http_host.clone();
            }
            if v.is_empty() {
                // Left as it is; no later entry is tried.
                return None;
            }
            if req && self.sent_host.is_none() {
                self.sent_host = Some(v.clone());
            }
            return Some(v.clone());
        }
        None
    }

    /// The replacement of a URL path (with what follows it) by map-urlpath.
    pub fn urlpath(&mut self, p: &str, req: bool) -> Option<String> {
        let list = &self.h.urlpaths;
        if req {
            let i = list.iter().position(|(k, _)| p.starts_with(k.as_str()))?;
            self.sent_path.get_or_insert(i);
            return Some(format!("{}{}", list[i].1, &p[list[i].0.len()..]));
        }
        let back = |(k, v): &(String, String)| {
            p.starts_with(v.as_str())
                .then(|| format!("{k}{}", &p[v.len()..]))
        };
        if let Some(r) = self.sent_path.and_then(|i| back(&list[i])) {
            return Some(r);
        }
        list.iter().find_map(back)
    }

    /// A URL (a path, or scheme://authority/path) remapped; None: unchanged.
    pub fn uri(&mut self, u: &str, req: bool) -> Option<String> {
        if u.starts_with('/') {
            return self.urlpath(u, req);
        }
        let colon = u.find(':')?;
        if !u[colon..].starts_with("://") {
            return None;
        }
        let scheme = &u[..colon];
        let after = &u[colon + 3..];
        let (auth, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, "/"),
        };
        if auth.is_empty() {
            return None;
        }
        let mut scheme = scheme.to_string();
        let mut auth = auth.to_string();
        if let Some(m) = self.host(&auth, req) {
            if self.https {
                if req && scheme == "https" {
                    scheme = "http".into();
                } else if !req && scheme == "http" {
                    scheme = "https".into();
                }
            }
            auth = m;
        }
        let path = self.urlpath(path, req).unwrap_or_else(|| path.to_string());
        let out = format!("{scheme}://{auth}{path}");
        (out != u).then_some(out)
    }

    /// A Set-Cookie value with its Path (map-urlpath) and Domain
    /// (map-host-response) remapped; None: unchanged.
    pub fn set_cookie(&mut self, c: &str) -> Option<String> {
        let mut parts: Vec<String> = c.split(';').map(str::to_string).collect();
        let mut changed = false;
        // The first part is the cookie itself; attributes follow.
        for part in parts.iter_mut().skip(1) {
            let lead = part.len() - part.trim_start().len();
            let Some(eq) = part.find('=') else {
                continue;
            };
            let name = part[lead..eq].trim_end();
            let mut at = eq + 1;
            if part[at..].starts_with('"') {
                at += 1;
            }
            let new = if name.eq_ignore_ascii_case("path") {
                let v = &part[at..];
                if !v.starts_with('/') {
                    continue;
                }
                self.urlpath(v, false)
                    .map(|p| format!("{}{p}", &part[..at]))
            } else if name.eq_ignore_ascii_case("domain") {
                if part[at..].starts_with('.') {
                    at += 1;
                }
                let v = &part[at..];
                let end = v.find([' ', '\t', '"']).unwrap_or(v.len());
                if end == 0 {
                    continue;
                }
                self.host(&v[..end], false)
                    .map(|h| format!("{}{h}{}", &part[..at], &v[end..]))
            } else {
                None
            };
            if let Some(n) = new {
                *part = n;
                changed = true;
            }
        }
        changed.then(|| parts.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remap(h: Header, host: &str) -> Remap {
        Remap::new(Rc::new(h), Some(host.into()), false)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// What lighttpd 1.4.69 did with the same configuration and request
    /// (observed: map-urlpath /front => /back, map-host-request - => back.example,
    /// map-host-response - => -, Host 127.0.0.1:18080).
    #[test]
    fn as_lighttpd_maps_both_ways() {
        let h = Header {
            urlpaths: pairs(&[("/front", "/back")]),
            hosts_request: pairs(&[("-", "back.example")]),
            hosts_response: pairs(&[("-", "-")]),
            ..Header::default()
        };
        let mut r = remap(h, "127.0.0.1:18080");
        assert_eq!(r.uri("/front/a?q=1", true).as_deref(), Some("/back/a?q=1"));
        assert_eq!(
            r.host("127.0.0.1:18080", true).as_deref(),
            Some("back.example")
        );
        assert_eq!(
            r.uri("http://back.example/back/y", false).as_deref(),
            Some("http://127.0.0.1:18080/front/y")
        );
        assert_eq!(r.uri("/back/z", false).as_deref(), Some("/front/z"));
        assert_eq!(
            r.set_cookie("a=1; Path=/back/x; Domain=back.example")
                .as_deref(),
            Some("a=1; Path=/front/x; Domain=127.0.0.1:18080")
        );
        assert_eq!(r.uri("/elsewhere", false), None);
        assert_eq!(
            r.uri("http://other/back/q", false).as_deref(),
            Some("http://other/front/q")
        );
    }

    #[test]
    fn first_match_and_the_way_back() {
        let h = Header {
            urlpaths: pairs(&[("/a/", "/x/"), ("/b/", "/x/")]),
            ..Header::default()
        };
        let mut r = remap(h, "h");
        assert_eq!(r.urlpath("/b/1", true).as_deref(), Some("/x/1"));
        // The entry the request took is the way back, not the first one.
        assert_eq!(r.urlpath("/x/2", false).as_deref(), Some("/b/2"));
        assert_eq!(r.urlpath("/c", true), None);
    }

    #[test]
    fn https_remap_and_empty_values() {
        let h = Header {
            hosts_request: pairs(&[("keep.example", ""), ("-", "back")]),
            hosts_response: pairs(&[("back", "front.example")]),
            https_remap: true,
            ..Header::default()
        };
        let mut r = Remap::new(Rc::new(h), Some("front.example".into()), true);
        assert_eq!(r.host("KEEP.example", true), None);
        assert_eq!(
            r.uri("https://front.example/p", true).as_deref(),
            Some("http://back/p")
        );
        assert_eq!(
            r.uri("http://back", false).as_deref(),
            Some("https://front.example/")
        );
        assert_eq!(
            r.set_cookie("a=b; domain=.back; path=/").as_deref(),
            Some("a=b; domain=.front.example; path=/")
        );
        assert_eq!(r.uri("mailto:x", false), None);
        assert_eq!(r.uri("http:///x", false), None);
    }
}
