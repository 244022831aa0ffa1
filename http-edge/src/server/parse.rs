//! HTTP/1.1 request framing: the head (request line and headers) with
//! `httparse`, then the body by `Content-Length` or chunked coding.
//!
//! Bad input is normal traffic here: every problem is a small [`FrameError`]
//! that the connection loop answers (400, 413, 431, 501, 505) and then closes
//! the connection, because after a framing error the byte stream can no
//! longer be trusted to delimit the next request.

/// Headers accepted per request (a browser behind an ingress sends 20-40).
pub const MAX_HEADERS: usize = 100;
/// Largest request head (request line plus headers), bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body, bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More than [`MAX_HEADERS`] headers (431).
    TooManyHeaders,
    /// Head larger than [`MAX_HEAD_BYTES`] (431).
    HeadTooLarge,
    /// Not HTTP/1.x syntax (400).
    Malformed(&'static str),
    /// A missing, repeated-and-different, or non-numeric `Content-Length` (400).
    BadContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`, or chunk syntax errors (400).
    BadFraming(&'static str),
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// Body larger than [`MAX_BODY_BYTES`] (413).
    BodyTooLarge,
}

impl FrameError {
    /// The HTTP status answering this error.
    pub fn status(self) -> u16 {
        match self {
            FrameError::TooManyHeaders | FrameError::HeadTooLarge => 431,
            FrameError::BodyTooLarge => 413,
            FrameError::UnsupportedTransferEncoding => 501,
            FrameError::Malformed(_) | FrameError::BadContentLength | FrameError::BadFraming(_) => {
                400
            }
        }
    }

    /// A short explanation for the problem document.
    pub fn detail(self) -> &'static str {
        match self {
            FrameError::TooManyHeaders => "the request has more than 100 header fields",
            FrameError::HeadTooLarge => "the request line and headers exceed 16 KiB",
            FrameError::Malformed(what) => what,
            FrameError::BadContentLength => {
                "Content-Length must be one non-negative decimal integer"
            }
            FrameError::BadFraming(what) => what,
            FrameError::UnsupportedTransferEncoding => {
                "only the chunked transfer coding is supported"
            }
            FrameError::BodyTooLarge => "the request body exceeds 64 KiB",
        }
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head<'h, 'b> {
    /// Method.
    pub method: &'b str,
    /// Request target (origin form: path and query).
    pub target: &'b str,
    /// Minor version: 0 or 1.
    pub version: u8,
    /// Header fields.
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, including the blank line.
    pub len: usize,
    /// Body delimitation.
    pub framing: Framing,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete.
pub fn parse_head<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Option<Head<'h, 'b>>, FrameError> {
    let mut req = httparse::Request::new(headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(FrameError::TooManyHeaders),
        Err(httparse::Error::Version) => {
            return Err(FrameError::Malformed("unsupported HTTP version"));
        }
        Err(_) => {
            return Err(FrameError::Malformed(
                "the request line or a header field is malformed",
            ));
        }
    };
    let len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(FrameError::HeadTooLarge);
            }
            return Ok(None);
        }
    };
    if len > MAX_HEAD_BYTES {
        return Err(FrameError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(FrameError::Malformed("incomplete request line"));
    };
    let headers: &'h [httparse::Header<'b>] = req.headers;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut has_host = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = parse_content_length(h.value).ok_or(FrameError::BadContentLength)?;
            match content_length {
                Some(prev) if prev != v => return Err(FrameError::BadContentLength),
                _ => content_length = Some(v),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            let v = std::str::from_utf8(h.value)
                .map_err(|_| FrameError::UnsupportedTransferEncoding)?;
            if chunked || !v.trim().eq_ignore_ascii_case("chunked") {
                return Err(FrameError::UnsupportedTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("host") {
            has_host = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let t = trim(token);
                if t.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if trim(h.value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(FrameError::Malformed("unsupported Expect header"));
            }
        }
    }
    if has_te && content_length.is_some() {
        return Err(FrameError::BadFraming(
            "a request must not carry both Content-Length and Transfer-Encoding",
        ));
    }
    if has_te && version == 0 {
        return Err(FrameError::BadFraming(
            "HTTP/1.0 does not support Transfer-Encoding",
        ));
    }
    if version == 1 && !has_host {
        return Err(FrameError::Malformed(
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    let framing = if chunked {
        Framing::Chunked
    } else {
        let n = content_length.unwrap_or(0);
        if n > MAX_BODY_BYTES {
            return Err(FrameError::BodyTooLarge);
        }
        Framing::Length(n)
    };
    let keep_alive = if version == 1 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    Ok(Some(Head {
        method,
        target,
        version,
        headers,
        len,
        framing,
        keep_alive,
        expect_continue,
    }))
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Strict `Content-Length`: ASCII digits only, no sign, no spaces inside, fits in usize.
fn parse_content_length(v: &[u8]) -> Option<usize> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Decodes a chunked body that starts at `buf[0]`. `Ok(None)`: incomplete.
/// On success returns the decoded body and the number of bytes consumed
/// (chunks, last chunk and trailer section).
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(x)) => x,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(FrameError::BadFraming("invalid chunk size line")),
        };
        pos += consumed;
        if size == 0 {
            // Trailer section: header fields then CRLF.
            let mut trailers = [httparse::EMPTY_HEADER; 16];
            return match httparse::parse_headers(&buf[pos..], &mut trailers) {
                Ok(httparse::Status::Complete((n, _))) => Ok(Some((body, pos + n))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(FrameError::BadFraming("invalid chunked trailer section")),
            };
        }
        let size = usize::try_from(size).map_err(|_| FrameError::BodyTooLarge)?;
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(FrameError::BodyTooLarge);
        }
        let end = pos.checked_add(size).ok_or(FrameError::BodyTooLarge)?;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..end]);
        if &buf[end..end + 2] != b"\r\n" {
            return Err(FrameError::BadFraming("chunk data is not followed by CRLF"));
        }
        pos = end + 2;
    }
}

#[cfg(test)]
mod tests;
