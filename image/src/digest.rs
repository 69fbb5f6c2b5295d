//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and streaming hashers that
//! compute or verify a digest while bytes pass through.
//!
//! A [`Digest`] is always valid once built: the algorithm is known and the
//! encoded part is lower-case hex of the algorithm's length.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// Errors from parsing or verifying a digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("digest {0:?}: missing algorithm prefix (expected sha256:<hex>)")]
    MissingAlgorithm(String),
    /// The algorithm is not one berth knows.
    #[error("digest {0:?}: unsupported algorithm (expected sha256 or sha512)")]
    UnsupportedAlgorithm(String),
    /// The encoded part has the wrong length or characters.
    #[error("digest {digest:?}: encoded part must be {len} lower-case hex characters")]
    BadEncoding {
        /// The whole digest string.
        digest: String,
        /// The expected number of hex characters.
        len: usize,
    },
    /// Content hashed to another digest than the one expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// The digest the content should have had.
        expected: Digest,
        /// The digest the content had.
        actual: Digest,
    },
    /// Content had another size than the one expected.
    #[error("content {digest}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest of the content being checked.
        digest: Digest,
        /// The size the descriptor declared.
        expected: u64,
        /// The size actually read or written.
        actual: u64,
    },
}

/// A hash algorithm used in digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm of every digest berth writes.
    Sha256,
    /// SHA-512, parsed and verified for content written by others.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the `:` in a digest.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated content digest such as `sha256:e3b0c442...`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from an algorithm and its hex encoding, checking the encoding.
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadEncoding {
                digest: format!("{algorithm}:{hex}"),
                len: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` computed with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex encoding (the part after `:`).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as `docker images` shows an image id.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Checks that `bytes` hash to this digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), DigestError> {
        let actual = Digest::of(self.algorithm, bytes);
        if &actual == self {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: self.clone(),
                actual,
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(s.to_string()))?;
        let algorithm = Algorithm::from_name(alg)
            .ok_or_else(|| DigestError::UnsupportedAlgorithm(s.to_string()))?;
        Digest::new(algorithm, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> oci_spec::image::Digest {
        // Every `Digest` we hold is a valid OCI digest, so oci-spec accepts it.
        match oci_spec::image::Digest::from_str(&d.to_string()) {
            Ok(o) => o,
            Err(_) => unreachable!("a validated digest is a valid OCI digest"),
        }
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Digest, DigestError> {
        d.as_ref().parse()
    }
}

/// An incremental hasher for one [`Algorithm`].
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feeds bytes into the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far (the hasher itself is left untouched).
    pub fn digest(&self) -> Digest {
        self.clone().finish()
    }

    /// Consumes the hasher and returns the digest.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

/// A reader that hashes what it reads and counts the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with `algorithm`.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    /// Digest of the bytes read so far.
    pub fn digest(&self) -> Digest {
        self.hasher.digest()
    }

    /// Number of bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that checks, when its inner reader reaches end of file, that the
/// bytes read match an expected digest (and size, if given).
///
/// On mismatch the final `read` fails with [`io::ErrorKind::InvalidData`]
/// wrapping a [`DigestError`], so a consumer never mistakes corrupt content
/// for a clean end of stream.
pub struct VerifyingReader<R> {
    inner: HashingReader<R>,
    expected: Digest,
    expected_size: Option<u64>,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`, which must yield content with digest `expected`.
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        VerifyingReader {
            inner: HashingReader::new(inner, expected.algorithm()),
            expected,
            expected_size,
            verified: false,
        }
    }

    /// True once end of file was reached and the content matched.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    fn check(&mut self) -> Result<(), DigestError> {
        let count = self.inner.count();
        if let Some(size) = self.expected_size {
            if size != count {
                return Err(DigestError::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: count,
                });
            }
        }
        let actual = self.inner.digest();
        if actual != self.expected {
            return Err(DigestError::Mismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if let Some(size) = self.expected_size {
            if self.inner.count() > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::SizeMismatch {
                        digest: self.expected.clone(),
                        expected: size,
                        actual: self.inner.count(),
                    },
                ));
            }
        }
        if n == 0 && !self.verified {
            self.check()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.verified = true;
        }
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `algorithm`.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
        }
    }

    /// Wraps `inner` with a hasher that already saw earlier bytes (for resumed writes).
    pub fn resume(inner: W, hasher: Hasher, count: u64) -> Self {
        HashingWriter {
            inner,
            hasher,
            count,
        }
    }

    /// Digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.digest()
    }

    /// Number of bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the wrapped writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::sha256_of(b""), d);
    }

    #[test]
    fn parses_sha512() {
        let d = Digest::of(Algorithm::Sha512, b"abc");
        let again: Digest = d.to_string().parse().unwrap();
        assert_eq!(d, again);
        assert_eq!(d.hex().len(), 128);
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            "e3b0".parse::<Digest>(),
            Err(DigestError::MissingAlgorithm(_))
        ));
        assert!(matches!(
            "md5:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha256:abcd".parse::<Digest>(),
            Err(DigestError::BadEncoding { .. })
        ));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(upper.parse::<Digest>().is_err());
    }

    #[test]
    fn verifying_reader_accepts_good_content() {
        let data = b"hello world".to_vec();
        let d = Digest::sha256_of(&data);
        let mut r = VerifyingReader::new(&data[..], d, Some(11));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert!(r.is_verified());
        assert_eq!(out, data);
    }

    #[test]
    fn verifying_reader_rejects_bad_content() {
        let d = Digest::sha256_of(b"hello world");
        let mut r = VerifyingReader::new(&b"hello w0rld"[..], d, None);
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("digest mismatch"));
    }

    #[test]
    fn verifying_reader_rejects_wrong_size() {
        let d = Digest::sha256_of(b"hello");
        let mut r = VerifyingReader::new(&b"hello"[..], d, Some(4));
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(buf, b"hello world");
        assert_eq!(d, Digest::sha256_of(b"hello world"));
    }

    #[test]
    fn serde_round_trip() {
        let d: Digest = EMPTY.parse().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let oci: oci_spec::image::Digest = (&d).into();
        assert_eq!(Digest::try_from(&oci).unwrap(), d);
    }
}
