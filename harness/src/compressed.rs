//! The run folder's large files, compressed with zstd: one JSON value (`*.json.zst`) or JSON
//! lines (`*.jsonl.zst`). Lines are written in frames, one a flush, so a file still being
//! written reads back up to its last whole frame, and files are read as a stream, never
//! whole.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The compression level: zstd's fastest levels keep a writer well under a core at the
/// history's rate, and level 3 compresses the evidence about nine to one.
const LEVEL: i32 = 3;

/// JSON lines into a zstd file, one frame per `flush`.
pub struct LinesWriter {
    encoder: Option<zstd::Encoder<'static, BufWriter<File>>>,
    /// Lines since the frame began.
    pending: u64,
}

impl LinesWriter {
    pub fn create(path: &Path) -> std::io::Result<LinesWriter> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        Ok(LinesWriter {
            encoder: Some(zstd::Encoder::new(file, LEVEL)?),
            pending: 0,
        })
    }

    fn encoder(&mut self) -> std::io::Result<&mut zstd::Encoder<'static, BufWriter<File>>> {
        self.encoder
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the compressed file is already closed"))
    }

    pub fn write<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let encoder = self.encoder()?;
        serde_json::to_writer(&mut *encoder, value)?;
        encoder.write_all(b"\n")?;
        self.pending += 1;
        Ok(())
    }

    /// Ends the frame, so a reader sees every line written so far, and begins the next.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let Some(encoder) = self.encoder.take() else {
            return Ok(());
        };
        let mut file = encoder.finish()?;
        file.flush()?;
        self.encoder = Some(zstd::Encoder::new(file, LEVEL)?);
        self.pending = 0;
        Ok(())
    }

    /// Ends the last frame and closes the file.
    pub fn finish(mut self) -> std::io::Result<()> {
        let Some(encoder) = self.encoder.take() else {
            return Ok(());
        };
        // A frame with no line is still a valid (empty) frame: an empty history reads back.
        let mut file = encoder.finish()?;
        file.flush()?;
        file.get_ref().sync_data()
    }
}

/// Reads a zstd file of JSON lines, calling `each` with every value in order.
pub fn each_line<T: DeserializeOwned>(
    path: &Path,
    mut each: impl FnMut(T) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let decoder = zstd::Decoder::new(File::open(path)?)?;
    let mut reader = BufReader::with_capacity(1 << 16, decoder);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let value = serde_json::from_str(line.trim_end()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {number}: {e}"),
            )
        })?;
        each(value)?;
    }
}

/// Writes one JSON value as a zstd file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut encoder = zstd::Encoder::new(file, LEVEL)?;
    serde_json::to_writer(&mut encoder, value)?;
    let mut file = encoder.finish()?;
    file.flush()?;
    file.get_ref().sync_data()
}

/// Reads one JSON value from a zstd file, as a stream.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let decoder = zstd::Decoder::new(File::open(path)?)?;
    let reader = BufReader::with_capacity(1 << 16, decoder);
    let mut json = serde_json::Deserializer::from_reader(reader);
    let value = T::deserialize(&mut json)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    json.end()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(value)
}

/// The bytes a zstd file decompresses to, read whole (for tests and small files).
pub fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    zstd::Decoder::new(File::open(path)?)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_in_frames_read_back_in_order_and_a_file_being_written_reads_to_its_last_frame()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl.zst");
        let mut writer = LinesWriter::create(&path).expect("create");
        for i in 0..10u32 {
            writer.write(&i).expect("write");
        }
        writer.flush().expect("flush");
        writer.write(&10u32).expect("write");
        // Frames already ended read back; the open frame is not there yet.
        let mut seen = Vec::new();
        let partial = each_line(&path, |v: u32| {
            seen.push(v);
            Ok(())
        });
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "{partial:?}");
        writer.finish().expect("finish");
        let mut seen = Vec::new();
        each_line(&path, |v: u32| {
            seen.push(v);
            Ok(())
        })
        .expect("read");
        assert_eq!(seen, (0..11).collect::<Vec<_>>());
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl.zst");
        std::fs::write(
            &path,
            zstd::encode_all(&b"1\n2\nthree\n"[..], 1).expect("encode"),
        )
        .expect("write");
        let err = each_line(&path, |_: u32| Ok(())).expect_err("a bad line");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn a_value_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json.zst");
        write_json(&path, &vec!["a", "b"]).expect("write");
        let back: Vec<String> = read_json(&path).expect("read");
        assert_eq!(back, ["a", "b"]);
    }
}
