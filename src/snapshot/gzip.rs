//! The /metrics body, kept only compressed: one gzip member from a large body
//! compressed once per snapshot, as it is rendered, and a small tail added per
//! scrape.
//!
//! The snapshot's body (tens of megabytes at partition granularity) is deflated
//! while it is written ([`Builder`]), so it never exists whole in memory, and
//! sync-flushed, which ends it on a byte boundary without a final block. Each
//! scrape appends the live tail (the notifier's metrics, a few kilobytes) as
//! *stored* deflate blocks, the last one final: a deflate stream is a sequence of
//! blocks, and stored blocks refer to nothing before them (pigz joins its
//! parallel pieces the same way). Storing costs a few bytes per 64 KiB and no
//! compressor state, so a scrape allocates almost nothing. The gzip trailer's
//! CRC-32 is the body's CRC combined with the tail's. The result is a single,
//! ordinary gzip member, which every client decodes (not a multi-member stream,
//! which some do not). A scraper that does not ask for gzip (Prometheus always
//! does) gets the body inflated on the fly, 64 KiB at a time ([`Prefix::inflate`]).

use std::io::{Read as _, Write as _};

use axum::body::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final stored block: ends a sync-flushed deflate stream.
const FINAL_EMPTY: [u8; 5] = [1, 0, 0, 0xff, 0xff];

/// Plain bytes per piece of an inflated body.
const PIECE: usize = 64 * 1024;

/// A compressed body waiting for its tail.
#[derive(Debug)]
pub struct Prefix {
    /// Raw deflate blocks, sync-flushed, no final block.
    deflate: Bytes,
    crc: Crc,
    /// Bytes of the plain body (the CRC's own count wraps at 4 GiB).
    plain_len: u64,
}

/// Compresses a body as it is written (fast level: scrapes are frequent,
/// exposition text compresses about 10x anyway), leaving the stream open for a
/// tail.
#[derive(Debug)]
pub struct Builder {
    enc: DeflateEncoder<Vec<u8>>,
    crc: Crc,
    plain_len: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            enc: DeflateEncoder::new(Vec::with_capacity(64 * 1024), Compression::fast()),
            crc: Crc::new(),
            plain_len: 0,
        }
    }

    /// Appends `data` to the body.
    pub fn write(&mut self, data: &[u8]) {
        self.crc.update(data);
        self.plain_len += data.len() as u64;
        // Writing into a Vec cannot fail.
        let _ = self.enc.write_all(data);
    }

    /// The body so far, sync-flushed.
    pub fn finish(mut self) -> Prefix {
        // `flush` is a sync flush; into a Vec it cannot fail.
        let _ = self.enc.flush();
        let mut deflate = std::mem::take(self.enc.get_mut());
        deflate.shrink_to_fit();
        Prefix {
            deflate: Bytes::from(deflate),
            crc: self.crc,
            plain_len: self.plain_len,
        }
    }
}

/// Deflates `body` whole.
pub fn prefix(body: &[u8]) -> Prefix {
    let mut b = Builder::new();
    b.write(body);
    b.finish()
}

impl Prefix {
    /// The whole gzip member: header, the body's blocks, `tail`'s blocks ending in
    /// the final one, and the trailer over both. Returned as pieces, so the large
    /// middle is never copied.
    pub fn with_tail(&self, tail: &[u8]) -> [Bytes; 4] {
        let tail_deflate = stored_blocks(tail);
        let mut tail_crc = Crc::new();
        tail_crc.update(tail);
        let mut crc = Crc::new();
        crc.combine(&self.crc);
        crc.combine(&tail_crc);
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&crc.sum().to_le_bytes());
        trailer.extend_from_slice(&crc.amount().to_le_bytes());
        [
            Bytes::from_static(&HEADER),
            self.deflate.clone(),
            Bytes::from(tail_deflate),
            Bytes::from(trailer),
        ]
    }

    /// The plain body, inflated lazily in pieces of at most 64 KiB: a plain
    /// scrape holds one piece at a time, never the whole body.
    pub fn inflate(&self) -> Inflate {
        let compressed = std::io::Cursor::new(self.deflate.clone()).chain(&FINAL_EMPTY[..]);
        Inflate {
            decoder: Some(flate2::read::DeflateDecoder::new(compressed)),
        }
    }

    /// The whole plain body (tests and in-process readers).
    pub fn plain(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.plain_len).unwrap_or(0));
        for piece in self.inflate() {
            match piece {
                Ok(p) => out.extend_from_slice(&p),
                Err(_) => break,
            }
        }
        out
    }

    /// Bytes of the plain body.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// Bytes of the compressed body.
    pub fn len(&self) -> usize {
        self.deflate.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deflate.is_empty()
    }
}

type Compressed = std::io::Chain<std::io::Cursor<Bytes>, &'static [u8]>;

/// The plain body piece by piece, see [`Prefix::inflate`].
#[derive(Debug)]
pub struct Inflate {
    /// None once the body is done or failed.
    decoder: Option<flate2::read::DeflateDecoder<Compressed>>,
}

impl Iterator for Inflate {
    type Item = std::io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoder = self.decoder.as_mut()?;
        let mut piece = vec![0u8; PIECE];
        let mut filled = 0;
        while filled < PIECE {
            match decoder.read(&mut piece[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.decoder = None;
                    return Some(Err(e));
                }
            }
        }
        if filled < PIECE {
            self.decoder = None;
        }
        if filled == 0 {
            return None;
        }
        piece.truncate(filled);
        Some(Ok(Bytes::from(piece)))
    }
}

/// `data` as stored deflate blocks of at most 65,535 bytes, the last one final
/// (RFC 1951 3.2.4: a header byte, LEN and its complement, the bytes).
fn stored_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65_535 + 1));
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&FINAL_EMPTY);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        // In range: chunks are at most 65,535 bytes.
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip_first_member(parts: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        // GzDecoder reads one member only: the result must be one member.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    #[test]
    fn body_and_tail_decode_as_one_member_with_a_valid_crc() {
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("lagwatch_x{{p=\"{i}\"}} {}\n", i % 97).into_bytes())
            .collect();
        for tail in [
            &b""[..],
            b"# live\nlagwatch_y 1\n",
            &body[..5000],
            &body[..200_000],
        ] {
            let p = prefix(&body);
            let mut want = body.clone();
            want.extend_from_slice(tail);
            assert_eq!(gunzip_first_member(&p.with_tail(tail)), want);
        }
    }

    #[test]
    fn an_empty_body_still_makes_a_valid_member() {
        let p = prefix(b"");
        assert_eq!(gunzip_first_member(&p.with_tail(b"tail\n")), b"tail\n");
    }

    #[test]
    fn a_body_written_in_pieces_equals_the_whole_and_inflates_back() {
        let body: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("lagwatch_x{{p=\"{i}\"}} {}\n", i % 89).into_bytes())
            .collect();
        let mut b = Builder::new();
        for piece in body.chunks(7_777) {
            b.write(piece);
        }
        let p = b.finish();
        assert_eq!(p.plain_len(), body.len() as u64);
        assert!(
            p.len() < body.len() / 4,
            "compressed {} of {}",
            p.len(),
            body.len()
        );
        let mut want = body.clone();
        want.extend_from_slice(b"tail\n");
        assert_eq!(gunzip_first_member(&p.with_tail(b"tail\n")), want);
        // Plain scrapes: lazily, in pieces no larger than PIECE, the same bytes.
        let pieces: Vec<Bytes> = p.inflate().map(|r| r.expect("inflates")).collect();
        assert!(pieces.len() > 1 && pieces.iter().all(|x| x.len() <= PIECE));
        assert_eq!(pieces.concat(), body);
        assert_eq!(p.plain(), body);
        assert_eq!(prefix(b"").plain(), b"");
        assert_eq!(prefix(b"").inflate().count(), 0);
    }
}
