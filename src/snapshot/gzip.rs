//! One gzip member from a large body compressed once per snapshot and a small
//! tail compressed per scrape.
//!
//! The snapshot's body (megabytes at partition granularity) is deflated once and
//! sync-flushed, which ends it on a byte boundary without a final block. Each
//! scrape appends the live tail (the notifier's metrics, a few kilobytes) as
//! *stored* deflate blocks, the last one final: a deflate stream is a sequence of
//! blocks, and stored blocks refer to nothing before them (pigz joins its
//! parallel pieces the same way). Storing costs a few bytes per 64 KiB and no
//! compressor state, so a scrape allocates almost nothing. The gzip trailer's
//! CRC-32 is the body's CRC combined with the tail's. The result is a single, ordinary gzip member, which
//! every client decodes (not a multi-member stream, which some do not).

use std::io::Write as _;

use axum::body::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A compressed body waiting for its tail.
#[derive(Debug)]
pub struct Prefix {
    /// Raw deflate blocks, sync-flushed, no final block.
    deflate: Bytes,
    crc: Crc,
}

/// Deflates `body` (fast level: scrapes are frequent, exposition text compresses
/// about 10x anyway), leaving the stream open for a tail.
pub fn prefix(body: &[u8]) -> Prefix {
    let mut enc = DeflateEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
    // Writing to and flushing into a Vec cannot fail; `flush` is a sync flush.
    let _ = enc.write_all(body);
    let _ = enc.flush();
    let deflate = Bytes::from(std::mem::take(enc.get_mut()));
    let mut crc = Crc::new();
    crc.update(body);
    Prefix { deflate, crc }
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

    /// Bytes of the compressed body.
    pub fn len(&self) -> usize {
        self.deflate.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deflate.is_empty()
    }
}

/// `data` as stored deflate blocks of at most 65,535 bytes, the last one final
/// (RFC 1951 3.2.4: a header byte, LEN and its complement, the bytes).
fn stored_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65_535 + 1));
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
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
    use std::io::Read as _;

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
}
