//! mod_proxy's own keys as lighttpd 1.4.69 reads them: proxy.header (the
//! remapping lists and the switches) and proxy.forwarded (which RFC 7239
//! parameters go into Forwarded). A value lighttpd refuses stops the start.

use wick_conf::options::parse_bool;
use wick_conf::Value;

/// proxy.header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// map-urlpath: (client prefix, backend prefix), in order.
    pub urlpaths: Vec<(String, String)>,
    /// map-host-request: (client Host, backend Host); "-" as a key is the
    /// client's Host, as a value the client's Host too.
    pub hosts_request: Vec<(String, String)>,
    /// map-host-response: (backend authority, client authority); "-" as a key is
    /// the host map-host-request sent, as a value the client's Host.
    pub hosts_response: Vec<(String, String)>,
    /// Remapped URLs of an https request go to the backend as http:// and come
    /// back as https://.
    pub https_remap: bool,
    /// Upgrade (WebSocket and others) is passed on, and a 101 tunnels.
    pub upgrade: bool,
    /// CONNECT is tunnelled to the backend (otherwise answered 405).
    pub connect: bool,
    /// HTTP/1.0 to the backend (no chunked, no Upgrade, no TE).
    pub force_http10: bool,
}

impl Header {
    /// Anything to remap in the request (its target, Host, Destination,
    /// Content-Location).
    pub fn remaps_request(&self) -> bool {
        !self.urlpaths.is_empty() || !self.hosts_request.is_empty()
    }

    /// Anything to remap in the response (Location, Content-Location,
    /// Set-Cookie).
    pub fn remaps_response(&self) -> bool {
        !self.urlpaths.is_empty() || !self.hosts_response.is_empty()
    }
}

/// Parse proxy.header; `force_http10`: the default of that switch (the
/// server.feature-flags "proxy.force-http10").
pub fn header(v: &Value, force_http10: bool) -> Result<Header, String> {
    let mut h = Header {
        force_http10,
        ..Header::default()
    };
    let Value::Array(items) = v else {
        return Err(
            "unexpected value for proxy.header; expected ( \"param\" => ( \"key\" => \"value\" ) )"
                .into(),
        );
    };
    for (k, v) in items {
        let k = k.as_deref().unwrap_or("");
        let switch = |name: &str| {
            parse_bool(v).map_err(|_| {
                format!(
                    "unexpected value for proxy.header; expected \"{name}\" => \"enable\" or \"disable\""
                )
            })
        };
        match k {
            "https-remap" => h.https_remap = switch(k)?,
            "force-http10" => h.force_http10 = switch(k)?,
            "upgrade" => h.upgrade = switch(k)?,
            "connect" => h.connect = switch(k)?,
            "map-urlpath" | "map-host-request" | "map-host-response" => {
                let list = kv_strings(v).ok_or_else(|| {
                    format!("unexpected value for proxy.header; expected ( \"param\" => ( \"key\" => \"value\" ) ) near key {k}")
                })?;
                match k {
                    "map-urlpath" => h.urlpaths = list,
                    "map-host-request" => h.hosts_request = list,
                    _ => h.hosts_response = list,
                }
            }
            _ => {
                return Err(format!(
                    "unexpected key for proxy.header; expected ( \"param\" => ( \"key\" => \"value\" ) ) near key {k}"
                ))
            }
        }
    }
    Ok(h)
}

/// `( "key" => "value", .. )` with string values only (lighttpd's kvstring).
fn kv_strings(v: &Value) -> Option<Vec<(String, String)>> {
    let Value::Array(items) = v else {
        return None;
    };
    items
        .iter()
        .map(|(k, v)| match (k, v) {
            (Some(k), Value::Str(s)) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// proxy.forwarded parameters (bits of [`Forwarded`]).
pub mod fwd {
    pub const FOR: u8 = 1;
    pub const PROTO: u8 = 2;
    pub const HOST: u8 = 4;
    pub const BY: u8 = 8;
    pub const REMOTE_USER: u8 = 16;
}

/// Parse proxy.forwarded into [`fwd`] bits.
pub fn forwarded(v: &Value) -> Result<u8, String> {
    let Value::Array(items) = v else {
        return Err(
            "unexpected value for proxy.forwarded; expected ( \"param\" => \"value\" )".into(),
        );
    };
    let mut bits = 0;
    for (k, v) in items {
        let k = k.as_deref().unwrap_or("");
        let bit = match k {
            "for" => fwd::FOR,
            "proto" => fwd::PROTO,
            "host" => fwd::HOST,
            "by" => fwd::BY,
            "remote_user" => fwd::REMOTE_USER,
            _ => {
                return Err(format!(
                "proxy.forwarded keys must be one of: by, for, host, proto, remote_user, but not: {k}"
            ))
            }
        };
        let on = parse_bool(v).map_err(|_| {
            format!(
                "proxy.forwarded values must be one of: 0, 1, enable, disable; error for key: {k}"
            )
        })?;
        if on {
            bits |= bit;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_and_switches() {
        let v = Value::pairs(vec![
            (
                "map-urlpath",
                Value::pairs(vec![("/front", Value::text("/back"))]),
            ),
            (
                "map-host-request",
                Value::pairs(vec![("-", Value::text("back.example"))]),
            ),
            (
                "map-host-response",
                Value::pairs(vec![("-", Value::text("-"))]),
            ),
            ("https-remap", Value::text("enable")),
            ("upgrade", Value::Int(1)),
            ("force-http10", Value::text("disable")),
        ]);
        let h = header(&v, true).expect("ok");
        assert_eq!(h.urlpaths, vec![("/front".into(), "/back".into())]);
        assert!(h.https_remap && h.upgrade && !h.force_http10 && !h.connect);
        assert!(h.remaps_request() && h.remaps_response());
        assert!(
            header(&Value::pairs(vec![]), true)
                .expect("ok")
                .force_http10
        );
    }

    #[test]
    fn header_refusals() {
        for bad in [
            Value::pairs(vec![("bogus", Value::text("x"))]),
            Value::pairs(vec![("upgrade", Value::text("maybe"))]),
            Value::pairs(vec![("map-urlpath", Value::text("/x"))]),
            Value::pairs(vec![(
                "map-urlpath",
                Value::pairs(vec![("/a", Value::pairs(vec![]))]),
            )]),
        ] {
            assert!(header(&bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn forwarded_params() {
        let v = Value::pairs(vec![
            ("for", Value::Int(1)),
            ("proto", Value::text("enable")),
            ("by", Value::text("disable")),
        ]);
        assert_eq!(forwarded(&v), Ok(fwd::FOR | fwd::PROTO));
        assert!(forwarded(&Value::pairs(vec![("xx", Value::Int(1))])).is_err());
        assert!(forwarded(&Value::pairs(vec![("for", Value::text("maybe"))])).is_err());
    }
}
