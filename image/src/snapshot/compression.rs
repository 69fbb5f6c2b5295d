//! Layer compression: telling tar, gzip and zstd apart by media type and by
//! magic bytes, and opening a decompressing reader.

use std::io::{self, BufReader, Read};

/// Magic bytes at the start of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Magic bytes at the start of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Errors from choosing a decompressor.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    /// The media type names a compression berth cannot read.
    #[error("layer media type {0:?}: unsupported compression")]
    UnsupportedMediaType(String),
    /// Reading the first bytes of the stream failed.
    #[error("reading layer stream header: {0}")]
    Io(#[from] io::Error),
}

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// tar+gzip.
    Gzip,
    /// tar+zstd.
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares (OCI and Docker names),
    /// `Ok(None)` for an empty media type (detect by magic only).
    pub fn from_media_type(media_type: &str) -> Result<Option<Compression>, CompressionError> {
        // Non-distributable and foreign layers use the same suffixes.
        let known = [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            "application/vnd.docker.image.rootfs.diff.tar",
            "application/vnd.docker.image.rootfs.foreign.diff.tar",
        ];
        if media_type.is_empty() {
            return Ok(None);
        }
        for base in known {
            if let Some(rest) = media_type.strip_prefix(base) {
                return match rest {
                    "" => Ok(Some(Compression::None)),
                    "+gzip" | ".gzip" => Ok(Some(Compression::Gzip)),
                    "+zstd" | ".zstd" => Ok(Some(Compression::Zstd)),
                    _ => Err(CompressionError::UnsupportedMediaType(
                        media_type.to_string(),
                    )),
                };
            }
        }
        Err(CompressionError::UnsupportedMediaType(
            media_type.to_string(),
        ))
    }

    /// The OCI media type of a layer written with this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The compression the first bytes of a stream show, `None` when they are
    /// neither gzip nor zstd (then the stream is taken as plain tar).
    pub fn from_magic(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&GZIP_MAGIC) {
            Some(Compression::Gzip)
        } else if head.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// Opens a reader of the uncompressed tar stream of `layer`. The magic bytes
/// decide (some tools label uncompressed layers `+gzip`); the media type is
/// checked to be a layer type berth knows, and a disagreement is logged.
pub fn decompress<'a, R: Read + 'a>(
    media_type: &str,
    mut layer: R,
) -> Result<(Compression, Box<dyn Read + 'a>), CompressionError> {
    let declared = Compression::from_media_type(media_type)?;
    let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
    (&mut layer)
        .take(ZSTD_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    let detected = Compression::from_magic(&head).unwrap_or(Compression::None);
    if let Some(declared) = declared {
        if declared != detected {
            tracing::warn!(
                media_type,
                ?detected,
                "layer compression differs from its media type; using the detected one"
            );
        }
    }
    let stream = BufReader::with_capacity(64 * 1024, io::Cursor::new(head).chain(layer));
    let reader: Box<dyn Read + 'a> = match detected {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(stream)?),
    };
    Ok((detected, reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_types() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip").unwrap(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip")
                .unwrap(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::from_media_type("").unwrap(), None);
        assert!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+bzip2").is_err()
        );
        assert!(Compression::from_media_type("text/plain").is_err());
    }

    #[test]
    fn magic_decides() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&b"hello"[..], 1).unwrap();
        for (bytes, want) in [
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
            (b"hello".to_vec(), Compression::None),
        ] {
            let (c, mut r) =
                decompress("application/vnd.oci.image.layer.v1.tar", &bytes[..]).unwrap();
            assert_eq!(c, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"hello");
        }
    }
}
