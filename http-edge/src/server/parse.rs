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
    /// An `Expect` other than `100-continue` (417).
    ExpectationFailed,
}

impl FrameError {
    /// The HTTP status answering this error.
    pub fn status(self) -> u16 {
        match self {
            FrameError::TooManyHeaders | FrameError::HeadTooLarge => 431,
            FrameError::BodyTooLarge => 413,
            FrameError::UnsupportedTransferEncoding => 501,
            FrameError::ExpectationFailed => 417,
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
            FrameError::ExpectationFailed => "the only supported expectation is 100-continue",
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
            // Byte-wise, ASCII-only: `chunked` followed by a Unicode space
            // must not pass for `chunked` (a proxy would disagree about it).
            if chunked || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
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
            if !trim(h.value).eq_ignore_ascii_case(b"100-continue") {
                return Err(FrameError::ExpectationFailed);
            }
            // RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored.
            expect_continue = version == 1;
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

/// Where the head of a buffered request ends, if it has arrived: the offset
/// just past the empty line. `from` is where the previous search stopped, so
/// a head arriving in many small pieces is searched once, not once per piece.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(off) = buf
        .get(i..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
    {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Longest chunk-size line (size and extensions), bytes.
const MAX_CHUNK_LINE: usize = 1024;

/// Parses a chunk-size line strictly: hex digits, optional `;` extensions of
/// visible ASCII, then CRLF (no bare LF, no empty size). `Ok(None)`: incomplete.
fn chunk_line(buf: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let bad = || FrameError::BadFraming("invalid chunk size line");
    let mut size: usize = 0;
    let mut i = 0;
    while let Some(d) = buf.get(i).and_then(|b| (*b as char).to_digit(16)) {
        if i == 8 {
            // More than 32 bits of size: far over the body limit anyway.
            return Err(FrameError::BodyTooLarge);
        }
        size = size * 16 + d as usize;
        i += 1;
    }
    if i == buf.len() {
        return if i > MAX_CHUNK_LINE {
            Err(bad())
        } else {
            Ok(None)
        };
    }
    if i == 0 {
        return Err(bad());
    }
    if buf[i] == b';' {
        while let Some(&b) = buf.get(i) {
            if b == b'\r' {
                break;
            }
            if b == b'\n' || (b < 0x20 && b != b'\t') || b >= 0x7f {
                return Err(bad());
            }
            i += 1;
            if i > MAX_CHUNK_LINE {
                return Err(bad());
            }
        }
    }
    match (buf.get(i), buf.get(i + 1)) {
        (None, _) | (Some(b'\r'), None) => Ok(None),
        (Some(b'\r'), Some(b'\n')) => Ok(Some((i + 2, size))),
        _ => Err(bad()),
    }
}

/// An incremental decoder of a chunked body. Feed it the bytes after the
/// head each time more arrive (the same prefix, grown); it resumes where it
/// stopped, so a body arriving a byte at a time is decoded once. Trailer
/// fields are refused (nothing here uses them, and they are a known place
/// for parsers to disagree).
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    pos: usize,
    body: zeroize::Zeroizing<Vec<u8>>,
}

impl ChunkDecoder {
    /// Decodes what `buf` adds. `Ok(Some(n))`: the body is complete and took
    /// `n` bytes of `buf`.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        loop {
            let Some((line, size)) = chunk_line(&buf[self.pos..])? else {
                return Ok(None);
            };
            if size == 0 {
                let end = self.pos + line;
                return match (buf.get(end), buf.get(end + 1)) {
                    (Some(b'\r'), Some(b'\n')) => Ok(Some(end + 2)),
                    (None, _) | (Some(b'\r'), None) => Ok(None),
                    _ => Err(FrameError::BadFraming(
                        "chunked trailer fields are not supported",
                    )),
                };
            }
            if self.body.len().saturating_add(size) > MAX_BODY_BYTES {
                return Err(FrameError::BodyTooLarge);
            }
            let data = self.pos + line;
            let end = data + size;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(FrameError::BadFraming("chunk data is not followed by CRLF"));
            }
            self.body.extend_from_slice(&buf[data..end]);
            self.pos = end + 2;
        }
    }

    /// The decoded body so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Decodes a whole chunked body that starts at `buf[0]` (tests, one-shot use).
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
    let mut d = ChunkDecoder::default();
    Ok(d.feed(buf)?.map(|n| (d.body().to_vec(), n)))
}

#[cfg(test)]
mod tests;
