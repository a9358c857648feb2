//! The raw snapshot file format of `bpfmapctl map dump --format raw` and `map load`.
//!
//! A 40-byte header, then `count` records; all integers little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `BPFMRAW1` |
//! | 8 | 4 | `key_size` |
//! | 12 | 4 | `value_size` (per CPU for per-CPU maps) |
//! | 16 | 4 | `value_stride`: bytes of each record's value: `value_size`, or `round_up(value_size, 8) * cpus` |
//! | 20 | 4 | `cpus`: possible CPUs of a per-CPU map, 0 otherwise |
//! | 24 | 4 | `map_type` (the kernel's `enum bpf_map_type`) |
//! | 28 | 4 | reserved, 0 |
//! | 32 | 8 | `count` of records, or `u64::MAX` when unknown (written to a pipe): read to the end |
//!
//! Each record is the key (`key_size` bytes) followed by the value (`value_stride` bytes),
//! exactly as in the kernel's batch layout.

use std::io::{ErrorKind, Read, Write};

use crate::data::Entry;
use crate::dump::Batch;
use crate::error::Error;
use crate::layout::Layout;

/// The first 8 bytes of a raw snapshot.
pub const MAGIC: [u8; 8] = *b"BPFMRAW1";
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 40;
/// Offset of the `count` field, for writers that patch it in at the end.
pub const COUNT_OFFSET: u64 = 32;
/// `count` value meaning "unknown: read records to the end of the file".
pub const COUNT_UNKNOWN: u64 = u64::MAX;

/// The header of a raw snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Layout of the records.
    pub layout: Layout,
    /// The kernel map type of the dumped map.
    pub map_type: u32,
    /// Number of records, or [`COUNT_UNKNOWN`].
    pub count: u64,
}

impl Header {
    /// The 40 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        let stride = u32::try_from(self.layout.value_stride()).unwrap_or(u32::MAX);
        for (i, v) in [
            self.layout.key_size,
            self.layout.value_size,
            stride,
            self.layout.cpus.unwrap_or(0),
            self.map_type,
            0,
        ]
        .into_iter()
        .enumerate()
        {
            b[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        b[32..].copy_from_slice(&self.count.to_le_bytes());
        b
    }

    /// Parses and checks the 40 header bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let bad = |why: String| Error::InvalidInput(format!("not a bpfmap raw snapshot: {why}"));
        if b.len() < HEADER_LEN {
            return Err(bad(format!(
                "{} bytes, the header alone is {HEADER_LEN}",
                b.len()
            )));
        }
        if b[..8] != MAGIC {
            return Err(bad("wrong magic (expected BPFMRAW1)".into()));
        }
        let u32_at = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(w)
        };
        let mut c = [0u8; 8];
        c.copy_from_slice(&b[32..40]);
        let cpus = u32_at(20);
        let layout = Layout {
            key_size: u32_at(8),
            value_size: u32_at(12),
            cpus: (cpus != 0).then_some(cpus),
        };
        if layout.value_stride() != u32_at(16) as usize {
            return Err(bad(format!(
                "value stride {} does not match value size {} and {cpus} CPUs",
                u32_at(16),
                layout.value_size
            )));
        }
        Ok(Header {
            layout,
            map_type: u32_at(24),
            count: u64::from_le_bytes(c),
        })
    }
}

/// Writes a raw snapshot: the header, then records.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    layout: Layout,
    count: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the header with an unknown count; patch it in with [`COUNT_OFFSET`] after
    /// [`finish`](Writer::finish) if the output can seek.
    pub fn new(mut out: W, layout: Layout, map_type: u32) -> Result<Self, Error> {
        let header = Header {
            layout,
            map_type,
            count: COUNT_UNKNOWN,
        };
        out.write_all(&header.to_bytes())
            .map_err(|e| Error::io("writing the snapshot header", e))?;
        Ok(Writer {
            out,
            layout,
            count: 0,
        })
    }

    /// Appends one record: the key and the packed value.
    pub fn write_record(&mut self, key: &[u8], packed_value: &[u8]) -> Result<(), Error> {
        if key.len() != self.layout.key_size as usize
            || packed_value.len() != self.layout.value_stride()
        {
            return Err(Error::InvalidInput(format!(
                "record of {}+{} bytes does not fit the layout {}+{}",
                key.len(),
                packed_value.len(),
                self.layout.key_size,
                self.layout.value_stride()
            )));
        }
        self.out
            .write_all(key)
            .and_then(|()| self.out.write_all(packed_value))
            .map_err(|e| Error::io("writing the snapshot", e))?;
        self.count += 1;
        Ok(())
    }

    /// Appends every entry of a dump batch.
    pub fn write_batch(&mut self, batch: &Batch) -> Result<(), Error> {
        for i in 0..batch.len() {
            if let Some((k, v)) = batch.get(i) {
                self.write_record(k, v)?;
            }
        }
        Ok(())
    }

    /// Flushes; returns the output and the number of records written.
    pub fn finish(mut self) -> Result<(W, u64), Error> {
        self.out
            .flush()
            .map_err(|e| Error::io("writing the snapshot", e))?;
        Ok((self.out, self.count))
    }
}

/// One record: the key and the packed value.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// Reads a raw snapshot record by record, as [`Entry`] values.
#[derive(Debug)]
pub struct Reader<R: Read> {
    input: R,
    header: Header,
    read: u64,
    record: Vec<u8>,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R) -> Result<Self, Error> {
        let mut b = [0u8; HEADER_LEN];
        input.read_exact(&mut b).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => {
                Error::InvalidInput("not a bpfmap raw snapshot: shorter than its header".into())
            }
            _ => Error::io("reading the snapshot header", e),
        })?;
        let header = Header::from_bytes(&b)?;
        let len = header.layout.key_size as usize + header.layout.value_stride();
        Ok(Reader {
            input,
            header,
            read: 0,
            record: vec![0; len],
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record as (key, packed value), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Error> {
        if self.header.count != COUNT_UNKNOWN && self.read == self.header.count {
            return Ok(None);
        }
        let mut filled = 0;
        while filled < self.record.len() {
            match self.input.read(&mut self.record[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading the snapshot", e)),
            }
        }
        if filled == 0 && self.header.count == COUNT_UNKNOWN {
            return Ok(None);
        }
        if filled < self.record.len() {
            return Err(Error::InvalidInput(format!(
                "truncated snapshot: record {} is incomplete{}",
                self.read + 1,
                if self.header.count == COUNT_UNKNOWN {
                    String::new()
                } else {
                    format!(" (header says {} records)", self.header.count)
                }
            )));
        }
        self.read += 1;
        let (k, v) = self.record.split_at(self.header.layout.key_size as usize);
        Ok(Some((k, v)))
    }

    /// The next record as an [`Entry`] (per-CPU values split), or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        let layout = self.header.layout;
        Ok(self.next_record()?.map(|(k, v)| Entry {
            key: k.to_vec(),
            value: layout.unpack_value(v),
        }))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn layout(cpus: Option<u32>) -> Layout {
        Layout {
            key_size: 2,
            value_size: 3,
            cpus,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            layout: layout(Some(4)),
            map_type: 5,
            count: 7,
        };
        let b = h.to_bytes();
        assert_eq!(&b[..8], b"BPFMRAW1");
        assert_eq!(u32::from_le_bytes([b[16], b[17], b[18], b[19]]), 32);
        assert_eq!(Header::from_bytes(&b).ok(), Some(h));
        let mut bad = b;
        bad[0] = b'X';
        assert!(Header::from_bytes(&bad).is_err());
        let mut bad = b;
        bad[16] = 9;
        assert!(Header::from_bytes(&bad).is_err());
        assert!(Header::from_bytes(&b[..10]).is_err());
    }

    #[test]
    fn records_round_trip_with_and_without_count() {
        let mut w = Writer::new(Vec::new(), layout(None), 1).ok();
        for (k, v) in [([1u8, 2], [3u8, 4, 5]), ([6, 7], [8, 9, 10])] {
            assert!(w.as_mut().map(|w| w.write_record(&k, &v).is_ok()) == Some(true));
        }
        assert!(w.as_mut().map(|w| w.write_record(&[1], &[2]).is_err()) == Some(true));
        let (mut bytes, count) = w.and_then(|w| w.finish().ok()).unwrap_or_default();
        assert_eq!((bytes.len(), count), (40 + 10, 2));
        let read = |b: &[u8]| -> Result<Vec<Entry>, Error> { Reader::new(b)?.collect() };
        let want = vec![
            Entry::new(vec![1, 2], vec![3, 4, 5]),
            Entry::new(vec![6, 7], vec![8, 9, 10]),
        ];
        assert_eq!(read(&bytes).ok(), Some(want.clone()));
        // With the count patched in, trailing bytes are ignored and truncation is caught.
        bytes[32..40].copy_from_slice(&2u64.to_le_bytes());
        assert_eq!(read(&bytes).ok(), Some(want));
        assert!(read(&bytes[..48]).is_err());
        bytes[32..40].copy_from_slice(&COUNT_UNKNOWN.to_le_bytes());
        assert!(read(&bytes[..48]).is_err());
        assert!(read(b"short").is_err());
    }

    #[test]
    fn per_cpu_records_split_by_cpu() {
        let l = layout(Some(2));
        let mut packed = Vec::new();
        l.pack_value(
            &Value::PerCpu(vec![vec![1, 1, 1], vec![2, 2, 2]]),
            &mut packed,
        )
        .ok();
        let mut w = Writer::new(Vec::new(), l, 5).ok();
        let ok = w.as_mut().map(|w| w.write_record(&[0, 1], &packed).is_ok());
        assert_eq!(ok, Some(true));
        let (bytes, _) = w.and_then(|w| w.finish().ok()).unwrap_or_default();
        let mut r = Reader::new(&bytes[..]).ok();
        assert_eq!(r.as_ref().map(|r| r.header().map_type), Some(5));
        let e = r.as_mut().and_then(|r| r.next_entry().ok().flatten());
        assert_eq!(
            e,
            Some(Entry::per_cpu(
                vec![0, 1],
                vec![vec![1, 1, 1], vec![2, 2, 2]]
            ))
        );
    }
}
