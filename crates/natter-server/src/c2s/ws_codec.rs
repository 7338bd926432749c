//! RFC 6455 WebSocket frames, server side, with no I/O: a decoder fed the
//! bytes a client sent, which hands back complete text messages and control
//! frames, and the encoder of unmasked server frames.
//!
//! Limits: a message (all its fragments) may not exceed `max_message`
//! bytes; the check is made on each frame header, before its payload is
//! buffered. No extension is negotiated, so reserved bits must be clear;
//! client frames must be masked (RFC 6455 §5.1). Between messages the
//! decoder holds no buffer.

use std::fmt;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Close codes (RFC 6455 §7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
pub const CLOSE_BAD_DATA: u16 = 1007;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text message (valid UTF-8).
    Text(Vec<u8>),
    /// A ping with its payload (to answer with a pong).
    Ping(Vec<u8>),
    /// The client closes: its status code, if it gave one.
    Close(Option<u16>),
}

/// Why a client's frames were refused; each maps to a close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsError {
    /// A message larger than the limit.
    TooBig { size: u64, limit: usize },
    /// A binary message: XMPP over WebSocket is text only (RFC 7395 §3.2).
    Binary,
    /// A text message that is not UTF-8.
    BadUtf8,
    /// A frame RFC 6455 does not allow.
    Protocol(&'static str),
}

impl WsError {
    /// The close code that names the problem.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooBig { .. } => CLOSE_TOO_BIG,
            WsError::Binary => CLOSE_UNSUPPORTED,
            WsError::BadUtf8 => CLOSE_BAD_DATA,
            WsError::Protocol(_) => CLOSE_PROTOCOL,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::TooBig { size, limit } => write!(
                f,
                "WebSocket message of {size} bytes or more exceeds the limit of {limit} bytes"
            ),
            WsError::Binary => f.write_str("binary WebSocket messages are not accepted: XMPP over WebSocket uses text messages (RFC 7395)"),
            WsError::BadUtf8 => f.write_str("WebSocket text message is not valid UTF-8"),
            WsError::Protocol(what) => write!(f, "WebSocket protocol error: {what}"),
        }
    }
}

/// The frame being read.
#[derive(Debug, Default)]
struct Frame {
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes already unmasked (the mask index).
    done: u64,
    len: u64,
}

/// Incremental decoder of client frames.
#[derive(Debug)]
pub struct WsDecoder {
    max_message: usize,
    head: [u8; 14],
    head_len: u8,
    /// Set once the header of the current frame is complete.
    frame: Option<Frame>,
    /// A fragmented text message in progress.
    in_message: bool,
    /// The message (or control payload) being assembled.
    msg: Vec<u8>,
    control: Vec<u8>,
}

impl WsDecoder {
    pub fn new(max_message: usize) -> Self {
        WsDecoder {
            max_message,
            head: [0; 14],
            head_len: 0,
            frame: None,
            in_message: false,
            msg: Vec::new(),
            control: Vec::new(),
        }
    }

    /// Decodes `data`, calling `out` for each event. After an error the
    /// connection must be closed (the decoder's state is undefined).
    pub fn feed<E: From<WsError>>(
        &mut self,
        mut data: &[u8],
        out: &mut impl FnMut(WsEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() || self.frame.as_ref().is_some_and(|f| f.done == f.len) {
            if self.frame.is_none() {
                let used = self.read_head(data)?;
                data = &data[used..];
                if self.frame.is_none() {
                    return Ok(()); // header incomplete
                }
            }
            let f = self.frame.as_mut().expect("frame header read");
            let want = (f.len - f.done).min(data.len() as u64) as usize;
            let dest = if f.opcode >= OP_CLOSE {
                &mut self.control
            } else {
                &mut self.msg
            };
            let start = dest.len();
            dest.extend_from_slice(&data[..want]);
            for (i, b) in dest[start..].iter_mut().enumerate() {
                *b ^= f.mask[((f.done + i as u64) % 4) as usize];
            }
            f.done += want as u64;
            data = &data[want..];
            if f.done == f.len {
                let f = self.frame.take().expect("frame");
                self.frame_done(f, out)?;
            }
        }
        Ok(())
    }

    /// Reads header bytes from `data`; returns how many were used. Sets
    /// `frame` once the header is complete and valid.
    fn read_head(&mut self, data: &[u8]) -> Result<usize, WsError> {
        let mut used = 0;
        loop {
            let have = self.head_len as usize;
            let need = if have < 2 {
                2
            } else {
                2 + match self.head[1] & 0x7F {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                } + 4
            };
            if have == need {
                break;
            }
            let Some(&b) = data.get(used) else {
                return Ok(used);
            };
            self.head[have] = b;
            self.head_len += 1;
            used += 1;
            if self.head_len == 2 {
                self.check_first_two()?;
            }
        }
        let h = &self.head;
        let (len, at) = match h[1] & 0x7F {
            126 => (u16::from_be_bytes([h[2], h[3]]) as u64, 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                let l = u64::from_be_bytes(b);
                if l >> 63 != 0 {
                    return Err(WsError::Protocol("frame length with the high bit set"));
                }
                (l, 10)
            }
            l => (l as u64, 2),
        };
        let opcode = h[0] & 0x0F;
        let fin = h[0] & 0x80 != 0;
        if opcode >= OP_CLOSE && len > 125 {
            return Err(WsError::Protocol("control frame longer than 125 bytes"));
        }
        if opcode < OP_CLOSE {
            let total = self.msg.len() as u64 + len;
            if total > self.max_message as u64 {
                return Err(WsError::TooBig {
                    size: total,
                    limit: self.max_message,
                });
            }
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&h[at..at + 4]);
        self.head_len = 0;
        self.frame = Some(Frame {
            opcode,
            fin,
            mask,
            done: 0,
            len,
        });
        Ok(used)
    }

    fn check_first_two(&self) -> Result<(), WsError> {
        let (b0, b1) = (self.head[0], self.head[1]);
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol(
                "reserved bits set (no extension was negotiated)",
            ));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frames must be masked"));
        }
        let opcode = b0 & 0x0F;
        let fin = b0 & 0x80 != 0;
        match opcode {
            OP_CONT if !self.in_message => {
                Err(WsError::Protocol("continuation frame without a message"))
            }
            OP_TEXT if self.in_message => Err(WsError::Protocol(
                "new message before the previous one was finished",
            )),
            OP_BINARY => Err(WsError::Binary),
            OP_CONT | OP_TEXT => Ok(()),
            OP_CLOSE | OP_PING | OP_PONG if !fin => {
                Err(WsError::Protocol("fragmented control frame"))
            }
            OP_CLOSE | OP_PING | OP_PONG => Ok(()),
            _ => Err(WsError::Protocol("unknown opcode")),
        }
    }

    fn frame_done<E: From<WsError>>(
        &mut self,
        f: Frame,
        out: &mut impl FnMut(WsEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        match f.opcode {
            OP_TEXT | OP_CONT => {
                self.in_message = !f.fin;
                if f.fin {
                    let msg = std::mem::take(&mut self.msg);
                    if std::str::from_utf8(&msg).is_err() {
                        return Err(WsError::BadUtf8.into());
                    }
                    out(WsEvent::Text(msg))?;
                }
                Ok(())
            }
            OP_PING => out(WsEvent::Ping(std::mem::take(&mut self.control))),
            OP_PONG => {
                self.control.clear();
                Ok(())
            }
            _ => {
                let c = std::mem::take(&mut self.control);
                let code = (c.len() >= 2).then(|| u16::from_be_bytes([c[0], c[1]]));
                out(WsEvent::Close(code))
            }
        }
    }

    /// Frees buffers kept between messages (nothing is lost).
    pub fn trim(&mut self) {
        if self.msg.is_empty() && self.msg.capacity() > 0 {
            self.msg = Vec::new();
        }
        if self.control.is_empty() && self.control.capacity() > 0 {
            self.control = Vec::new();
        }
    }
}

/// Appends one unmasked server frame.
pub fn encode_frame(opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if n <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and a reason (cut to fit in 123 bytes
/// at a character boundary).
pub fn encode_close(code: u16, reason: &str, out: &mut Vec<u8>) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = Vec::with_capacity(2 + end);
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&reason.as_bytes()[..end]);
    encode_frame(OP_CLOSE, &p, out);
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![b0];
        let n = payload.len();
        if n < 126 {
            out.push(0x80 | n as u8);
        } else if n <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode(d: &mut WsDecoder, data: &[u8]) -> Result<Vec<WsEvent>, WsError> {
        let mut evs = Vec::new();
        d.feed(data, &mut |e| {
            evs.push(e);
            Ok::<(), WsError>(())
        })?;
        Ok(evs)
    }

    #[test]
    fn rfc_accept_key_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn text_messages_byte_by_byte_and_fragmented() {
        let mut d = WsDecoder::new(1 << 20);
        let mut wire = client_frame(0x81, b"<presence/>", [1, 2, 3, 4]);
        wire.extend(client_frame(0x01, b"<message>", [9, 8, 7, 6]));
        wire.extend(client_frame(0x89, b"hi", [5, 5, 5, 5])); // ping between fragments
        wire.extend(client_frame(0x80, b"</message>", [0, 0, 0, 1]));
        let big = "x".repeat(70_000);
        wire.extend(client_frame(0x81, big.as_bytes(), [3, 1, 4, 1]));
        wire.extend(client_frame(0x81, b"", [3, 1, 4, 1]));
        let mut evs = Vec::new();
        for b in &wire {
            evs.extend(decode(&mut d, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(
            evs,
            vec![
                WsEvent::Text(b"<presence/>".to_vec()),
                WsEvent::Ping(b"hi".to_vec()),
                WsEvent::Text(b"<message></message>".to_vec()),
                WsEvent::Text(big.into_bytes()),
                WsEvent::Text(Vec::new()),
            ]
        );
        // All in one go gives the same.
        let mut d = WsDecoder::new(1 << 20);
        assert_eq!(decode(&mut d, &wire).unwrap().len(), 5);
        d.trim();
        assert_eq!(d.msg.capacity(), 0);
    }

    #[test]
    fn close_with_code() {
        let mut d = WsDecoder::new(100);
        let evs = decode(&mut d, &client_frame(0x88, &1001u16.to_be_bytes(), [7; 4])).unwrap();
        assert_eq!(evs, vec![WsEvent::Close(Some(1001))]);
    }

    #[test]
    fn refusals() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (client_frame(0x81, &[b'a'; 101], [1; 4]), CLOSE_TOO_BIG),
            (client_frame(0x82, b"bin", [1; 4]), CLOSE_UNSUPPORTED),
            (client_frame(0x81, &[0xFF, 0xFE], [1; 4]), CLOSE_BAD_DATA),
            (client_frame(0xC1, b"x", [1; 4]), CLOSE_PROTOCOL), // RSV1
            (client_frame(0x80, b"x", [1; 4]), CLOSE_PROTOCOL), // stray continuation
            (client_frame(0x83, b"x", [1; 4]), CLOSE_PROTOCOL), // reserved opcode
            (client_frame(0x09, b"x", [1; 4]), CLOSE_PROTOCOL), // fragmented ping
            (client_frame(0x89, &[0; 126], [1; 4]), CLOSE_PROTOCOL),
            (vec![0x81, 0x02, b'h', b'i'], CLOSE_PROTOCOL), // unmasked
        ];
        for (wire, code) in cases {
            let mut d = WsDecoder::new(100);
            let e = decode(&mut d, &wire).unwrap_err();
            assert_eq!(e.close_code(), code, "{e}");
        }
        // Fragments adding up past the limit are refused at the header.
        let mut d = WsDecoder::new(100);
        let mut wire = client_frame(0x01, &[b'a'; 60], [1; 4]);
        wire.extend(client_frame(0x80, &[b'a'; 60], [1; 4]));
        assert!(matches!(
            decode(&mut d, &wire),
            Err(WsError::TooBig { size: 120, .. })
        ));
        // A huge announced length is refused before any payload arrives.
        let mut d = WsDecoder::new(100);
        let mut head = vec![0x81, 0x80 | 127];
        head.extend_from_slice(&(1u64 << 40).to_be_bytes());
        head.extend_from_slice(&[0; 4]);
        assert!(matches!(decode(&mut d, &head), Err(WsError::TooBig { .. })));
        // A new text message inside a fragmented one.
        let mut d = WsDecoder::new(100);
        let mut wire = client_frame(0x01, b"a", [1; 4]);
        wire.extend(client_frame(0x81, b"b", [1; 4]));
        assert_eq!(
            decode(&mut d, &wire).unwrap_err().close_code(),
            CLOSE_PROTOCOL
        );
    }

    #[test]
    fn server_frames() {
        let mut out = Vec::new();
        encode_frame(OP_TEXT, b"<a/>", &mut out);
        assert_eq!(out, b"\x81\x04<a/>");
        out.clear();
        encode_frame(OP_TEXT, &[b'x'; 300], &mut out);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        out.clear();
        encode_close(CLOSE_TOO_BIG, &"é".repeat(100), &mut out);
        assert_eq!(out[0], 0x88);
        assert!(out[1] <= 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
