//! Responses and their encoding. Header values are owned strings checked for
//! CR/LF, so per-request values (`X-Request-Id`, `Retry-After`) need no leaks
//! and cannot split the response.

use std::sync::Arc;

/// A response body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// A static body.
    Static(&'static [u8]),
    /// A shared body (pre-rendered documents).
    Shared(Arc<[u8]>),
    /// An owned body.
    Owned(Vec<u8>),
}

impl Body {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Static(b) => b,
            Body::Shared(b) => b,
            Body::Owned(b) => b,
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// Further header fields.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Body,
}

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/problem+json`.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl Response {
    /// A response with a status and no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: Some(JSON),
            headers: Vec::new(),
            body: Body::Owned(body),
        }
    }

    /// Adds a header field. Values with control characters are dropped (and
    /// logged): they would corrupt the response.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        let value = value.into();
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            tracing::error!(
                header = name,
                "dropping a header value with control characters"
            );
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// The value of a header set on this response.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Appends the encoded response to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    rsp: &Response,
    request_id: &str,
    date: &str,
    close: bool,
    head_only: bool,
) {
    let body = rsp.body.as_bytes();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(rsp.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(rsp.status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(date.as_bytes());
    if let Some(ct) = rsp.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ct.as_bytes());
    }
    // 204 and 1xx carry no Content-Length.
    if rsp.status != 204 {
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    }
    if !request_id.is_empty() {
        out.extend_from_slice(b"\r\nX-Request-Id: ");
        out.extend_from_slice(request_id.as_bytes());
    }
    for (name, value) in &rsp.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !head_only && rsp.status != 204 {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_status_headers_and_body() {
        let rsp = Response::json(201, b"{}".to_vec()).with_header("Retry-After", "3");
        let mut out = Vec::new();
        encode(
            &mut out,
            &rsp,
            "req-1",
            "Sat, 21 Nov 2026 15:24:00 GMT",
            true,
            false,
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 201 Created\r\nDate: Sat, 21 Nov 2026 15:24:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Request-Id: req-1\r\nRetry-After: 3\r\nConnection: close\r\n\r\n{}"
        );
    }

    #[test]
    fn header_values_cannot_split_the_response() {
        let rsp = Response::empty(204).with_header("X-Evil", "a\r\nSet-Cookie: x=1");
        assert!(rsp.headers.is_empty());
        let mut out = Vec::new();
        encode(&mut out, &rsp, "id", "d", false, false);
        assert!(!String::from_utf8(out).unwrap().contains("Set-Cookie"));
    }
}
