//! Status lines and the small HTML bodies of error responses, built once per worker.

/// Reason phrase of `status` (RFC 9110).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// The built-in error page for `status`: a few lines of HTML.
pub fn page(status: u16) -> String {
    let r = reason(status);
    format!(
        "<!DOCTYPE html>\n<html>\n<head><title>{status} {r}</title></head>\n\
         <body><h1>{status} {r}</h1></body>\n</html>\n"
    )
}

/// Error pages preformatted per status, so an error costs no formatting.
pub struct Pages {
    pages: Vec<(u16, Box<[u8]>)>,
}

const STATUSES: &[u16] = &[
    400, 401, 403, 404, 405, 408, 411, 412, 413, 414, 416, 417, 431, 500, 501, 503, 505,
];

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Pages {
        Pages {
            pages: STATUSES
                .iter()
                .map(|&s| (s, page(s).into_bytes().into_boxed_slice()))
                .collect(),
        }
    }

    pub fn get(&self, status: u16) -> &[u8] {
        match self.pages.iter().find(|(s, _)| *s == status) {
            Some((_, p)) => p,
            None => &self.pages[0].1,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages() {
        let p = super::Pages::new();
        assert!(String::from_utf8_lossy(p.get(404)).contains("<title>404 Not Found</title>"));
        assert!(String::from_utf8_lossy(p.get(401)).contains("<title>401 Unauthorized</title>"));
        assert!(String::from_utf8_lossy(p.get(431)).contains("431 Request Header Fields Too Large"));
    }
}
