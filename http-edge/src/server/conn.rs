//! One connection's loop, run in its own may coroutine.
//!
//! Read into a buffer; answer every complete request in it in order
//! (pipelining); write the answers in one go; read again. Bodies are always
//! read completely before the handler runs, so a request never leaves bytes
//! that would be taken for the next one. After a framing error the answer is
//! sent with `Connection: close` and the connection ends; other connections
//! are unaffected.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use portcullis_engine::clock::Stopwatch;
use zeroize::Zeroize;

use super::parse::{self, FrameError, Framing, MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS};
use super::response::encode;
use super::{Handled, Handler, Request, ServerConfig, Shared};

/// Most bytes buffered for one request (head, body and chunk framing).
const MAX_BUFFERED: usize = MAX_HEAD_BYTES + 2 * MAX_BODY_BYTES;
/// Answers queued before they are written even if more requests are buffered.
const MAX_PENDING_OUTPUT: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// The read buffer's size between large requests.
const READ_BUF_NORMAL: usize = 2 * READ_CHUNK;
/// The output buffer's capacity between large answers.
const OUT_BUF_NORMAL: usize = READ_CHUNK;

enum Step {
    /// Keep going.
    Continue,
    /// Close the connection after flushing.
    Close,
    /// A framing error: flush the answer, then close without resetting it.
    Reject,
}

pub(super) fn serve<H: Handler>(
    stream: &mut may::net::TcpStream,
    peer: SocketAddr,
    handler: &H,
    shared: &Shared,
    cfg: &ServerConfig,
    busy: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(cfg.write_timeout));
    let mut buf = ReadBuf::new();
    let mut out: Vec<u8> = Vec::with_capacity(OUT_BUF_NORMAL);
    let mut continue_sent = false;
    let mut progress = Progress::default();
    let mut pending_since: Option<Stopwatch> = None;
    loop {
        // Answer every complete request already buffered.
        let mut start = 0;
        let filled = buf.filled_mut();
        let step = loop {
            if start == filled.len() {
                break Step::Continue;
            }
            match next_request(
                filled,
                &mut start,
                &mut progress,
                &mut out,
                peer,
                handler,
                shared,
            ) {
                Ok(Some(step)) => {
                    continue_sent = false;
                    if matches!(step, Step::Close) {
                        break Step::Close;
                    }
                    if out.len() > MAX_PENDING_OUTPUT && write_out(stream, &mut out).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    // Incomplete: ask for the body if the client waits for that.
                    let expects = matches!(progress.head, Some((_, _, true)));
                    if expects && !continue_sent {
                        if write_out(stream, &mut out).is_err()
                            || stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
                        {
                            return;
                        }
                        continue_sent = true;
                    }
                    break Step::Continue;
                }
                Err(e) => {
                    reject(&mut out, handler, shared, e);
                    break Step::Reject;
                }
            }
        };
        buf.consume(start);
        if write_out(stream, &mut out).is_err() {
            return;
        }
        match step {
            Step::Continue => {}
            Step::Close => return,
            Step::Reject => {
                linger(stream);
                return;
            }
        }
        if buf.is_empty() {
            pending_since = None;
            busy.store(false, Ordering::Release);
            if shared.shutting_down.load(Ordering::Acquire) {
                return;
            }
        } else if pending_since.is_none() || start > 0 {
            // The request timeout runs from the start of the request now at
            // the front of the buffer, not from the first of a pipelined series.
            pending_since = Some(Stopwatch::start());
        }
        if buf.len() >= MAX_BUFFERED {
            reject(&mut out, handler, shared, FrameError::BodyTooLarge);
            if write_out(stream, &mut out).is_ok() {
                linger(stream);
            }
            return;
        }
        // Wait for more bytes: the keep-alive timeout when idle, what is left
        // of the request timeout when a request has started.
        let timeout = match pending_since {
            None => cfg.keepalive_timeout,
            // Whole seconds: may keeps one timer list per distinct duration.
            Some(t) => match cfg.request_timeout.checked_sub(t.elapsed()) {
                Some(left) if left > Duration::ZERO => Duration::from_secs(left.as_secs().max(1)),
                _ => {
                    timed_out(stream, &mut out, handler, shared);
                    return;
                }
            },
        };
        let _ = stream.set_read_timeout(Some(timeout));
        match stream.read(buf.spare_mut()) {
            Ok(0) => return,
            Ok(n) => {
                buf.commit(n);
                busy.store(true, Ordering::Release);
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                if pending_since.is_some() {
                    timed_out(stream, &mut out, handler, shared);
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The connection's read buffer: `data[start..end]` holds unread bytes. The
/// storage is zeroed once and reused; reads go straight into its tail. It
/// grows for a large request and returns to its normal size once emptied,
/// so an idle connection never keeps a large request's worth of memory.
struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf {
            data: vec![0; READ_BUF_NORMAL],
            start: 0,
            end: 0,
        }
    }

    fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > READ_BUF_NORMAL {
                // Wiped before it is freed: it may hold a password.
                self.data.zeroize();
                self.data = vec![0; READ_BUF_NORMAL];
            }
        }
    }

    /// At least `READ_CHUNK` writable bytes after the unread ones. Bytes moved
    /// or left behind are wiped: they may hold a password.
    fn spare_mut(&mut self) -> &mut [u8] {
        if self.data.len() - self.end < READ_CHUNK {
            if self.start > 0 {
                let old_end = self.end;
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                self.data[self.end..old_end].zeroize();
            }
            if self.data.len() - self.end < READ_CHUNK {
                let mut bigger = vec![0; self.end + READ_CHUNK];
                bigger[..self.end].copy_from_slice(&self.data[..self.end]);
                self.data.zeroize();
                self.data = bigger;
            }
        }
        &mut self.data[self.end..]
    }

    fn commit(&mut self, n: usize) {
        self.end += n;
    }
}

/// What is known of the incomplete request at the front of the buffer, kept
/// across reads so that a request arriving in many small pieces is not
/// re-parsed and re-decoded from the start on every read.
#[derive(Default)]
struct Progress {
    /// Bytes already searched for the end of the head.
    scanned: usize,
    /// Head length, framing and `Expect: 100-continue`, once the head is complete.
    head: Option<(usize, Framing, bool)>,
    /// Chunked-body decoding state.
    chunks: parse::ChunkDecoder,
}

/// Handles the request at `buf[*start..]` if it is complete, advancing `start`.
fn next_request<H: Handler>(
    buf: &mut [u8],
    start: &mut usize,
    progress: &mut Progress,
    out: &mut Vec<u8>,
    peer: SocketAddr,
    handler: &H,
    shared: &Shared,
) -> Result<Option<Step>, FrameError> {
    let avail = &buf[*start..];
    // 1. The head: search for its end incrementally, parse it once complete.
    let (head_len, framing) = match progress.head {
        Some((len, framing, _)) => (len, framing),
        None => {
            let Some(end) = parse::head_end(avail, progress.scanned) else {
                progress.scanned = avail.len();
                if avail.len() > MAX_HEAD_BYTES {
                    return Err(FrameError::HeadTooLarge);
                }
                return Ok(None);
            };
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let Some(head) = parse::parse_head(avail, &mut headers)? else {
                // Leading empty lines ended the search early: keep looking.
                progress.scanned = end;
                return Ok(None);
            };
            progress.head = Some((head.len, head.framing, head.expect_continue));
            (head.len, head.framing)
        }
    };
    // 2. The body: wait for all of it without re-reading what came before.
    let total = match framing {
        Framing::Length(n) => {
            if avail.len() < head_len + n {
                return Ok(None);
            }
            head_len + n
        }
        Framing::Chunked => match progress.chunks.feed(&avail[head_len..])? {
            None => return Ok(None),
            Some(used) => head_len + used,
        },
    };
    // 3. Complete: borrow the head again and handle the request.
    let keep_alive = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Some(head) = parse::parse_head(avail, &mut headers)? else {
            return Err(FrameError::Malformed("incomplete request head"));
        };
        let body = match framing {
            Framing::Length(_) => &avail[head_len..total],
            Framing::Chunked => progress.chunks.body(),
        };
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (head.target, ""),
        };
        let head_only = head.method == "HEAD";
        let req = Request {
            method: if head_only { "GET" } else { head.method },
            path,
            query,
            headers: head.headers,
            body,
            peer,
        };
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let handled = handler.handle(&req);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        let keep_alive = head.keep_alive && !shared.shutting_down.load(Ordering::Acquire);
        shared.date.with(|date| {
            encode(
                out,
                &handled.response,
                &handled.request_id,
                date,
                !keep_alive,
                head_only,
            );
        });
        keep_alive
    };
    // Passwords and tokens travel in bodies: wipe them from the buffer (the
    // chunk decoder wipes its copy when it is dropped).
    buf[*start + head_len..*start + total].zeroize();
    *start += total;
    *progress = Progress::default();
    Ok(Some(if keep_alive {
        Step::Continue
    } else {
        Step::Close
    }))
}

fn reject<H: Handler>(out: &mut Vec<u8>, handler: &H, shared: &Shared, e: FrameError) {
    let Handled {
        response,
        request_id,
    } = handler.reject(e);
    shared
        .date
        .with(|date| encode(out, &response, &request_id, date, true, false));
}

fn timed_out<H: Handler>(
    stream: &mut may::net::TcpStream,
    out: &mut Vec<u8>,
    handler: &H,
    shared: &Shared,
) {
    let Handled {
        response,
        request_id,
    } = handler.timeout();
    shared
        .date
        .with(|date| encode(out, &response, &request_id, date, true, false));
    let _ = write_out(stream, out);
}

/// Closes after an error answer without losing it: closing a socket with
/// unread input makes the kernel send a reset, which can destroy the answer
/// before the client reads it (a client still uploading a too-large body).
/// So stop sending, and discard input for a moment (bounded in time and bytes).
fn linger(stream: &mut may::net::TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 1 << 20;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER));
    let started = Stopwatch::start();
    let mut sink = [0u8; 8192];
    let mut drained = 0;
    while drained < LINGER_BYTES && started.elapsed() < LINGER {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn write_out(stream: &mut may::net::TcpStream, out: &mut Vec<u8>) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let r = stream.write_all(out);
    release_output(out);
    r
}

/// Empties the output buffer, back to its normal capacity if an answer made
/// it grow (wiped before it is freed: answers carry tokens).
fn release_output(out: &mut Vec<u8>) {
    if out.capacity() > OUT_BUF_NORMAL {
        out.zeroize();
        *out = Vec::with_capacity(OUT_BUF_NORMAL);
    } else {
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `bytes` into `buf` the way the connection loop does.
    fn fill(buf: &mut ReadBuf, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = buf.spare_mut();
            let n = spare.len().min(bytes.len()).min(READ_CHUNK);
            spare[..n].copy_from_slice(&bytes[..n]);
            buf.commit(n);
            bytes = &bytes[n..];
        }
    }

    #[test]
    fn the_read_buffer_shrinks_once_a_large_request_is_consumed() {
        let mut buf = ReadBuf::new();
        assert_eq!(buf.data.len(), READ_BUF_NORMAL);
        let big = vec![b'x'; 150 * 1024];
        fill(&mut buf, &big);
        assert!(buf.data.len() >= big.len());
        // Partly consumed: the rest stays, and so does the storage.
        buf.consume(100 * 1024);
        assert_eq!(buf.len(), 50 * 1024);
        assert!(buf.data.len() > READ_BUF_NORMAL);
        assert!(buf.filled_mut().iter().all(|&b| b == b'x'));
        buf.consume(50 * 1024);
        assert!(buf.is_empty());
        assert_eq!(buf.data.len(), READ_BUF_NORMAL);
        assert_eq!(buf.data.capacity(), READ_BUF_NORMAL);
        // And it still works.
        fill(&mut buf, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(buf.filled_mut(), b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn the_output_buffer_shrinks_after_a_large_answer() {
        let mut out = Vec::with_capacity(OUT_BUF_NORMAL);
        out.extend_from_slice(b"small");
        release_output(&mut out);
        assert!(out.is_empty());
        assert_eq!(out.capacity(), OUT_BUF_NORMAL);
        out.extend(std::iter::repeat_n(b'y', 300 * 1024));
        release_output(&mut out);
        assert!(out.is_empty());
        assert_eq!(out.capacity(), OUT_BUF_NORMAL);
    }
}
