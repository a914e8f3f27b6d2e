//! The websocket frame format (RFC 6455), server side, and the opening
//! handshake's accept key.
//!
//! This small codec replaces `tungstenite`'s `WebSocket`, which owns a read
//! buffer and a write buffer for the life of each connection. Here the
//! connection keeps nothing between reads: [`parse_frame`] works on whatever
//! bytes one read produced (a stack buffer, see [`crate::engine::websocket`]),
//! only an incomplete frame or fragmented message is copied to the heap, and
//! outgoing frames are a header ([`encode_header`]) before the shared
//! pre-encoded body. No extension (permessage-deflate costs ~300 KiB per
//! connection with a default zlib pair) is ever negotiated, so the reserved
//! bits must be zero.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use super::DecodeError;

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation,
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
    /// Close, with an optional status code and reason.
    Close,
    /// Ping: answered with a pong carrying the same data.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Self::Continuation,
            1 => Self::Text,
            2 => Self::Binary,
            8 => Self::Close,
            9 => Self::Ping,
            10 => Self::Pong,
            _ => return Err(DecodeError::WebSocket("unknown opcode")),
        })
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0,
            Self::Text => 1,
            Self::Binary => 2,
            Self::Close => 8,
            Self::Ping => 9,
            Self::Pong => 10,
        }
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One complete frame found at the start of a buffer; its payload has been
/// unmasked in place at `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// Where the payload lies in the buffer.
    pub payload: std::ops::Range<usize>,
    /// Bytes the whole frame took.
    pub len: usize,
}

/// Parse the client frame at the start of `buf`, unmasking its payload in
/// place. `Ok(None)` means more bytes are needed. Frames larger than
/// `max_payload` are refused before their payload arrives.
pub fn parse_frame(buf: &mut [u8], max_payload: usize) -> Result<Option<Frame>, DecodeError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(DecodeError::WebSocket("reserved bits set"));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_u8(b0 & 0x0f)?;
    if b1 & 0x80 == 0 {
        return Err(DecodeError::WebSocket("client frame not masked"));
    }
    let (len, mut pos) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(DecodeError::WebSocket("bad control frame"));
    }
    if len > max_payload as u64 {
        return Err(DecodeError::TooLarge);
    }
    let len = len as usize;
    let Some(mask) = buf.get(pos..pos + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    pos += 4;
    let end = pos.checked_add(len).ok_or(DecodeError::TooLarge)?;
    let Some(payload) = buf.get_mut(pos..end) else {
        return Ok(None);
    };
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Ok(Some(Frame {
        fin,
        opcode,
        payload: pos..end,
        len: end,
    }))
}

/// The header of an unmasked server frame with a `len`-byte payload:
/// the bytes and how many of them to use.
pub fn encode_header(opcode: Opcode, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode.as_u8();
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// Append a whole server frame to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    let (h, n) = encode_header(opcode, payload.len());
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
}

/// A close frame with a status `code` and a reason (cut to fit 125 bytes).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    let mut out = Vec::with_capacity(payload.len() + 2);
    write_frame(&mut out, Opcode::Close, &payload);
    out
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[test]
    fn rfc6455_example_masked_hello() {
        let mut buf = vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let f = parse_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, f.len), (true, Opcode::Text, 11));
        assert_eq!(&buf[f.payload], b"Hello");
    }

    #[test]
    fn partial_frames_ask_for_more() {
        let full = masked(2, true, &[7u8; 300]);
        for cut in 0..full.len() {
            let mut part = full[..cut].to_vec();
            assert_eq!(parse_frame(&mut part, 1000), Ok(None), "cut at {cut}");
        }
        let mut buf = full.clone();
        let f = parse_frame(&mut buf, 1000).unwrap().unwrap();
        assert_eq!(&buf[f.payload], &[7u8; 300][..]);
        let mut big = masked(2, true, &vec![1u8; 70_000]);
        let f = parse_frame(&mut big, 100_000).unwrap().unwrap();
        assert_eq!(f.payload.len(), 70_000);
    }

    #[test]
    fn protocol_errors() {
        let mut unmasked = vec![0x81, 0x01, b'a'];
        assert!(parse_frame(&mut unmasked, 10).is_err());
        let mut rsv = masked(1, true, b"a");
        rsv[0] |= 0x40;
        assert!(parse_frame(&mut rsv, 10).is_err());
        assert!(parse_frame(&mut masked(3, true, b"a"), 10).is_err());
        assert!(parse_frame(&mut masked(9, false, b"a"), 10).is_err());
        assert!(parse_frame(&mut masked(9, true, &[0; 126]), 1000).is_err());
        assert_eq!(
            parse_frame(&mut masked(2, true, &[0; 11]), 10),
            Err(DecodeError::TooLarge)
        );
        let mut huge = vec![0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(parse_frame(&mut huge, 10), Err(DecodeError::TooLarge));
        let mut huge = vec![
            0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4,
        ];
        assert!(matches!(
            parse_frame(&mut huge, usize::MAX),
            Err(DecodeError::TooLarge) | Ok(None)
        ));
    }

    #[test]
    fn server_headers() {
        assert_eq!(
            encode_header(Opcode::Text, 5),
            ([0x81, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2)
        );
        assert_eq!(encode_header(Opcode::Binary, 256).0[..4], [0x82, 126, 1, 0]);
        assert_eq!(encode_header(Opcode::Binary, 65_536).1, 10);
        let close = close_frame(1000, &"é".repeat(100));
        assert_eq!(close[0], 0x88);
        assert!(close[1] <= 125);
        assert!(std::str::from_utf8(&close[4..]).is_ok());
    }

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
