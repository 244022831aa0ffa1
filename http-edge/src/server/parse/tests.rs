use super::*;

type Summary = (String, usize, Framing, bool, bool);

fn head(raw: &[u8]) -> Result<Option<Summary>, FrameError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_head(raw, &mut headers).map(|h| {
        h.map(|h| {
            (
                h.target.to_owned(),
                h.len,
                h.framing,
                h.keep_alive,
                h.expect_continue,
            )
        })
    })
}

#[test]
fn simple_requests() {
    let raw = b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";
    let (target, len, framing, ka, ex) = head(raw).unwrap().unwrap();
    assert_eq!(target, "/v1/auth/login");
    assert_eq!(len, raw.len());
    assert_eq!(framing, Framing::Length(12));
    assert!(ka && !ex);
    let raw = b"GET / HTTP/1.0\r\n\r\n";
    assert!(!head(raw).unwrap().unwrap().3, "HTTP/1.0 closes by default");
    let raw = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert!(head(raw).unwrap().unwrap().3);
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(!head(raw).unwrap().unwrap().3);
    let raw =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    let h = head(raw).unwrap().unwrap();
    assert_eq!(h.2, Framing::Chunked);
    assert!(h.4);
}

#[test]
fn incomplete_heads_ask_for_more_until_the_limit() {
    assert_eq!(head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
    let mut big = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
    assert_eq!(head(&big).unwrap_err(), FrameError::HeadTooLarge);
}

#[test]
fn sixty_four_headers_are_fine_and_too_many_are_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..64 {
        raw.extend(format!("X-H{i}: v\r\n").bytes());
    }
    raw.extend(b"\r\n");
    assert!(head(&raw).unwrap().is_some());
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        raw.extend(format!("X-H{i}: v\r\n").bytes());
    }
    raw.extend(b"\r\n");
    assert_eq!(head(&raw).unwrap_err(), FrameError::TooManyHeaders);
    assert_eq!(FrameError::TooManyHeaders.status(), 431);
}

#[test]
fn content_length_is_strict() {
    for bad in [
        "abc",
        "-1",
        "+5",
        "1 2",
        "99999999999999999999999",
        "",
        "0x10",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
        assert_eq!(
            head(raw.as_bytes()).unwrap_err(),
            FrameError::BadContentLength,
            "{bad:?}"
        );
    }
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(head(raw).unwrap_err(), FrameError::BadContentLength);
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
    assert!(head(raw).unwrap().is_some());
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    assert_eq!(head(raw).unwrap_err(), FrameError::BodyTooLarge);
}

#[test]
fn smuggling_shapes_are_refused() {
    let raw =
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(head(raw).unwrap_err(), FrameError::BadFraming(_)));
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(
        head(raw).unwrap_err(),
        FrameError::UnsupportedTransferEncoding
    );
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        head(raw).unwrap_err(),
        FrameError::UnsupportedTransferEncoding
    );
    let raw = b"GET / HTTP/1.1\r\n\r\n";
    assert!(
        matches!(head(raw).unwrap_err(), FrameError::Malformed(_)),
        "Host is required"
    );
    let raw = b"GET / HTTP/2.0\r\nHost: x\r\n\r\n";
    assert!(matches!(head(raw).unwrap_err(), FrameError::Malformed(_)));
    let raw = b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(matches!(head(raw).unwrap_err(), FrameError::Malformed(_)));
}

#[test]
fn chunked_bodies() {
    let raw = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT";
    let (body, n) = decode_chunked(raw).unwrap().unwrap();
    assert_eq!(body, b"Wikipedia");
    assert_eq!(&raw[n..], b"NEXT");
    let raw = b"4;name=value\r\nWiki\r\n0\r\n\r\n";
    assert_eq!(decode_chunked(raw).unwrap().unwrap().0, b"Wiki");
    // Trailers are refused rather than guessed at.
    assert!(decode_chunked(b"4\r\nWiki\r\n0\r\nX-Trailer: 1\r\n\r\n").is_err());
    for partial in [&b"4\r\nWi"[..], b"4\r\nWiki\r\n", b"4\r\nWiki\r\n0\r\n"] {
        assert_eq!(decode_chunked(partial).unwrap(), None);
    }
    assert!(decode_chunked(b"zz\r\n").is_err());
    // Smuggling shapes: empty size, bare LF in an extension or after the size.
    assert!(decode_chunked(b"\r\nWiki").is_err());
    assert!(decode_chunked(b";ext\r\n").is_err());
    assert!(decode_chunked(b"2;\nxx\r\n").is_err());
    assert!(decode_chunked(b"2\nxx\r\n0\r\n\r\n").is_err());
    assert!(decode_chunked(b"2 \r\nxx\r\n0\r\n\r\n").is_err());
    assert!(decode_chunked(b"4\r\nWikiXX").is_err());
    let huge = format!("{:x}\r\n", MAX_BODY_BYTES + 1);
    assert_eq!(
        decode_chunked(huge.as_bytes()).unwrap_err(),
        FrameError::BodyTooLarge
    );
    assert!(decode_chunked(b"ffffffffffffffff\r\n").is_err());
}

#[test]
fn chunked_decoding_resumes_byte_by_byte() {
    let raw = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
    let mut d = ChunkDecoder::default();
    for n in 1..raw.len() {
        assert_eq!(d.feed(&raw[..n]).unwrap(), None, "prefix of {n} bytes");
    }
    assert_eq!(d.feed(raw).unwrap(), Some(raw.len()));
    assert_eq!(d.body(), b"Wikipedia");
}

#[test]
fn transfer_coding_and_expect_are_ascii_strict() {
    let raw = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\u{a0}\r\n\r\n";
    assert_eq!(
        head(raw.as_bytes()).unwrap_err(),
        FrameError::UnsupportedTransferEncoding
    );
    let raw = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n";
    assert_eq!(head(raw).unwrap_err(), FrameError::ExpectationFailed);
    assert_eq!(FrameError::ExpectationFailed.status(), 417);
    let raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    assert!(
        !head(raw).unwrap().unwrap().4,
        "HTTP/1.0 expectations are ignored"
    );
}

#[test]
fn head_end_is_found_incrementally() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
    assert_eq!(head_end(raw, 0), Some(raw.len() - 4));
    for n in 0..raw.len() - 4 {
        assert_eq!(head_end(&raw[..n], 0), None);
        assert_eq!(head_end(&raw[..n], n.saturating_sub(1)), None);
    }
    assert_eq!(head_end(raw, 20), Some(raw.len() - 4));
    assert_eq!(head_end(b"GET / HTTP/1.0\n\nX", 0), Some(16));
}
