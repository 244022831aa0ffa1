//! The request framer (`portcullis_edge::server::parse`) driven the way the
//! connection loop (`http-edge/src/server/conn.rs`) drives it: bytes arrive
//! in pieces, the end of the head is searched incrementally, the head is
//! parsed once complete, a chunked body is decoded by a `ChunkDecoder` fed
//! the same growing prefix, and pipelined requests are taken one after the
//! other from one buffer.
//!
//! Input: two control bytes, then the bytes of the connection.
//! - byte 0, bits 0-2: the largest piece is `2^bits` bytes (1 = a byte at a time);
//!   bit 6: a header of `byte 1 × 128` bytes is inserted after the first
//!   line, so that small inputs reach the 16 KiB head limit;
//!   bit 7: the payload is a bare chunked body instead of a request stream.
//! - byte 1: seed of the piece sizes.
//!
//! Checked: nothing panics; a request fed in pieces frames exactly as when
//! it arrives whole (same requests, same bodies, same end); no framed request
//! takes more bytes than were given; heads and bodies stay within the limits;
//! the one-shot chunked decoder agrees with the incremental one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_edge::server::parse::{
    self, ChunkDecoder, FrameError, Framing, MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS,
};

/// One framed request.
#[derive(Debug, PartialEq, Eq)]
struct Framed {
    head_len: usize,
    framing: Framing,
    body: Vec<u8>,
    total: usize,
    keep_alive: bool,
}

/// How the byte stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte consumed or waiting for more.
    Open,
    /// A request without keep-alive: the connection closes after it.
    Closed,
    /// A framing error: answered, then the connection closes.
    Error(FrameError),
}

/// conn.rs `Progress`.
#[derive(Default)]
struct Progress {
    scanned: usize,
    head: Option<(usize, Framing)>,
    chunks: ChunkDecoder,
}

/// conn.rs `next_request` without the handler: frames the request at the
/// front of `avail` if it is complete.
fn next_request(avail: &[u8], progress: &mut Progress) -> Result<Option<Framed>, FrameError> {
    let (head_len, framing) = match progress.head {
        Some(h) => h,
        None => {
            let Some(end) = parse::head_end(avail, progress.scanned) else {
                progress.scanned = avail.len();
                if avail.len() > MAX_HEAD_BYTES {
                    return Err(FrameError::HeadTooLarge);
                }
                return Ok(None);
            };
            assert!(end <= avail.len(), "head_end past the buffer");
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let Some(head) = parse::parse_head(avail, &mut headers)? else {
                progress.scanned = end;
                return Ok(None);
            };
            progress.head = Some((head.len, head.framing));
            (head.len, head.framing)
        }
    };
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
    // conn.rs parses the head again to hand it to the handler: a head that
    // framed once must parse again, the same.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse::parse_head(avail, &mut headers)
        .expect("a head that parsed once fails the second time")
        .expect("a complete head became incomplete");
    assert_eq!((head.len, head.framing), (head_len, framing));
    let body = match framing {
        Framing::Length(_) => avail[head_len..total].to_vec(),
        Framing::Chunked => progress.chunks.body().to_vec(),
    };
    Ok(Some(Framed {
        head_len,
        framing,
        body,
        total,
        keep_alive: head.keep_alive,
    }))
}

fn check(avail: &[u8], f: &Framed) {
    assert!(f.total <= avail.len(), "framed more bytes than given");
    assert!(f.head_len <= f.total);
    assert!(f.head_len <= MAX_HEAD_BYTES, "head over the limit");
    assert!(f.body.len() <= MAX_BODY_BYTES, "body over the limit");
    // The head is self-delimiting: its own bytes parse to the same head.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let alone = parse::parse_head(&avail[..f.head_len], &mut headers)
        .expect("the head alone does not parse")
        .expect("the head alone is incomplete");
    assert_eq!((alone.len, alone.framing), (f.head_len, f.framing));
    match f.framing {
        Framing::Length(n) => {
            assert!(n <= MAX_BODY_BYTES);
            assert_eq!(f.total, f.head_len + n);
        }
        Framing::Chunked => {
            let raw = &avail[f.head_len..f.total];
            assert!(
                f.body.len() <= raw.len(),
                "decoded body longer than its coding"
            );
            let whole = parse::decode_chunked(raw).expect("one-shot decoder refuses");
            assert_eq!(whole, Some((f.body.clone(), raw.len())));
        }
    }
}

/// Piece sizes chosen by the control bytes (xorshift).
struct Pieces {
    max: usize,
    state: u32,
}

impl Iterator for Pieces {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        Some(1 + (x as usize) % self.max)
    }
}

/// The connection loop over `input`, fed in `pieces`.
fn drive(input: &[u8], mut pieces: impl Iterator<Item = usize>) -> (Vec<Framed>, End) {
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut progress = Progress::default();
    let mut framed = Vec::new();
    while fed < input.len() {
        let n = pieces.next().unwrap_or(usize::MAX).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        let mut start = 0;
        while start < buf.len() {
            match next_request(&buf[start..], &mut progress) {
                Ok(Some(f)) => {
                    check(&buf[start..], &f);
                    start += f.total;
                    progress = Progress::default();
                    let keep_alive = f.keep_alive;
                    framed.push(f);
                    if !keep_alive {
                        return (framed, End::Closed);
                    }
                }
                Ok(None) => break,
                Err(e) => return (framed, End::Error(e)),
            }
        }
        buf.drain(..start);
    }
    (framed, End::Open)
}

/// A bare chunked body, fed in pieces to one decoder.
fn chunked(
    input: &[u8],
    mut pieces: impl Iterator<Item = usize>,
) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
    let mut d = ChunkDecoder::default();
    let mut fed = 0;
    while fed < input.len() {
        fed += pieces.next().unwrap_or(usize::MAX).min(input.len() - fed);
        if let Some(n) = d.feed(&input[..fed])? {
            assert!(n <= fed, "the decoder took more than it was given");
            assert!(d.body().len() <= MAX_BODY_BYTES);
            return Ok(Some((d.body().to_vec(), n)));
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let [c0, c1, payload @ ..] = data else {
        return;
    };
    let pieces = Pieces {
        max: 1 << (c0 & 7),
        state: u32::from_le_bytes([*c1, *c0, 0x5a, 0xa5]),
    };
    if c0 & 0x80 != 0 {
        let whole = parse::decode_chunked(payload);
        if let Ok(Some((body, n))) = &whole {
            assert!(*n <= payload.len());
            assert!(body.len() <= MAX_BODY_BYTES && body.len() <= *n);
        }
        assert_eq!(
            whole,
            chunked(payload, pieces),
            "decoding depends on the pieces"
        );
        return;
    }
    let padded;
    let payload = if c0 & 0x40 != 0 {
        let at = payload
            .iter()
            .position(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let mut p = payload[..at].to_vec();
        p.extend_from_slice(b"X-Pad: ");
        p.resize(p.len() + usize::from(*c1) * 128, b'a');
        p.extend_from_slice(b"\r\n");
        p.extend_from_slice(&payload[at..]);
        padded = p;
        &padded[..]
    } else {
        payload
    };
    let (whole_framed, whole_end) = drive(payload, std::iter::empty());
    let (split_framed, split_end) = drive(payload, pieces);
    assert_eq!(
        whole_framed, split_framed,
        "framing depends on how the bytes arrived"
    );
    match (whole_end, split_end) {
        // A head that is both malformed and over the size limit: arriving in
        // pieces it reaches the limit before its end is seen (431), arriving
        // whole its syntax is checked first (400 or 431). Both refuse it.
        (
            End::Error(FrameError::Malformed(_) | FrameError::TooManyHeaders),
            End::Error(FrameError::HeadTooLarge),
        ) => {}
        (whole, split) => assert_eq!(whole, split, "the stream ends differently in pieces"),
    }
});
