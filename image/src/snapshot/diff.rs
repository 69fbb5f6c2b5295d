//! Turning a container's overlay upper dir back into an OCI layer tar, as a
//! build step's RUN or COPY commits it.
//!
//! Overlay whiteouts (0/0 character devices) become `.wh.NAME` entries and
//! opaque directories get a `.wh..wh..opq` entry. The output is
//! deterministic: entries in byte order of their paths, numeric owners only,
//! no user or group names, gzip without a timestamp, and optionally one fixed
//! mtime for every entry (`SOURCE_DATE_EPOCH`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::compression::Compression;
use super::whiteout::{self, Marker};
use crate::digest::{Algorithm, Digest, HashingWriter};

/// Errors from writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading the upper dir failed.
    #[error("reading {path} for the layer: {source}")]
    Read {
        /// The path read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the layer stream failed.
    #[error("writing layer entry {entry:?}: {source}")]
    Write {
        /// The entry being written.
        entry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The identity of a written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (goes in the image config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the bytes written to `out` (the layer descriptor's digest).
    pub digest: Digest,
    /// Number of bytes written to `out`.
    pub size: u64,
    /// The layer descriptor's media type.
    pub media_type: &'static str,
}

/// Writes the contents of `upper_dir` as a layer tar to `out`, compressed
/// with `compression`; every entry gets `fixed_mtime` (seconds since the
/// epoch) when given, else its own mtime.
pub fn write_layer<W: Write>(
    upper_dir: &Path,
    out: W,
    compression: Compression,
    fixed_mtime: Option<u64>,
) -> Result<LayerInfo, DiffError> {
    let wrote = |entry: &str| {
        let entry = entry.to_string();
        move |source| DiffError::Write { entry, source }
    };
    let compressed = HashingWriter::new(out, Algorithm::Sha256);
    let encoder = Encoder::new(compressed, compression).map_err(wrote("<start>"))?;
    let uncompressed = HashingWriter::new(encoder, Algorithm::Sha256);
    let mut builder = tar::Builder::new(uncompressed);
    let mut writer = LayerWriter {
        root: upper_dir,
        fixed_mtime,
        links: HashMap::new(),
    };
    writer.write_children(&mut builder, upper_dir)?;
    builder.finish().map_err(wrote("<end>"))?;
    let uncompressed = builder.into_inner().map_err(wrote("<end>"))?;
    let (encoder, diff_id, _) = uncompressed.finish();
    let compressed = encoder.finish().map_err(wrote("<end>"))?;
    let (mut out, digest, size) = compressed.finish();
    out.flush().map_err(wrote("<end>"))?;
    tracing::debug!(%diff_id, %digest, size, "layer written");
    Ok(LayerInfo {
        diff_id,
        digest,
        size,
        media_type: compression.oci_media_type(),
    })
}

/// The compressing stage of the output stream.
enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, compression: Compression) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::None => Encoder::Plain(out),
            // GzBuilder leaves mtime 0 and no file name: the same input gives the same bytes.
            Compression::Gzip => {
                Encoder::Gzip(flate2::GzBuilder::new().write(out, flate2::Compression::default()))
            }
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

struct LayerWriter<'a> {
    root: &'a Path,
    fixed_mtime: Option<u64>,
    /// Files with several links: (dev, inode) to the first entry name written.
    links: HashMap<(u64, u64), PathBuf>,
}

impl LayerWriter<'_> {
    fn read_err(path: &Path) -> impl FnOnce(io::Error) -> DiffError + '_ {
        move |source| DiffError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    fn write_children<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        dir: &Path,
    ) -> Result<(), DiffError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(Self::read_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(Self::read_err(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let meta = path.symlink_metadata().map_err(Self::read_err(&path))?;
            let rel = path.strip_prefix(self.root).unwrap_or(&path).to_path_buf();
            match whiteout::classify(name.as_bytes(), &meta) {
                Some(Marker::Whiteout) if whiteout::is_overlay_whiteout(&meta) => {
                    let mut wh = std::ffi::OsString::from(whiteout::PREFIX);
                    wh.push(&name);
                    self.append_empty(builder, &rel.with_file_name(wh), &meta)?;
                    continue;
                }
                Some(Marker::Meta) => continue,
                // Marker files (`.wh.NAME`, `.wh..wh..opq`) are already in tar form.
                _ => {}
            }
            self.append(builder, &path, &rel, &meta)?;
            if meta.is_dir() {
                if has_opaque_xattr(&path)? {
                    self.append_empty(builder, &rel.join(whiteout::OPAQUE), &meta)?;
                }
                self.write_children(builder, &path)?;
            }
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid().into());
        h.set_gid(meta.gid().into());
        let mtime = self
            .fixed_mtime
            .unwrap_or_else(|| u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_mtime(mtime);
        h.set_size(0);
        h
    }

    /// A zero-length regular entry: a whiteout or opaque marker.
    fn append_empty<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        rel: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), DiffError> {
        let mut h = self.header(meta, EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        builder
            .append_data(&mut h, rel, io::empty())
            .map_err(|source| DiffError::Write {
                entry: rel.to_string_lossy().into_owned(),
                source,
            })
    }

    fn append<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        path: &Path,
        rel: &Path,
        meta: &fs::Metadata,
    ) -> Result<(), DiffError> {
        let werr = |source| DiffError::Write {
            entry: rel.to_string_lossy().into_owned(),
            source,
        };
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let xattrs = xattrs_of(path)?;
        if !xattrs.is_empty() {
            let records: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .map_err(werr)?;
        }
        if ft.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let mut h = self.header(meta, EntryType::Link);
                return builder.append_link(&mut h, rel, first).map_err(werr);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            let mut h = self.header(meta, EntryType::Regular);
            h.set_size(meta.len());
            let file = fs::File::open(path).map_err(Self::read_err(path))?;
            builder.append_data(&mut h, rel, file).map_err(werr)
        } else if ft.is_dir() {
            let mut h = self.header(meta, EntryType::Directory);
            builder.append_data(&mut h, rel, io::empty()).map_err(werr)
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(Self::read_err(path))?;
            let mut h = self.header(meta, EntryType::Symlink);
            h.set_mode(0o777);
            builder.append_link(&mut h, rel, &target).map_err(werr)
        } else {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            let mut h = self.header(meta, kind);
            if kind != EntryType::Fifo {
                let rdev = meta.rdev();
                h.set_device_major(nix::sys::stat::major(rdev) as u32)
                    .map_err(werr)?;
                h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                    .map_err(werr)?;
            }
            builder.append_data(&mut h, rel, io::empty()).map_err(werr)
        }
    }
}

/// The xattrs of `path` that belong in a layer (overlayfs's own are left
/// out), sorted by name.
fn xattrs_of(path: &Path) -> Result<Vec<(String, Vec<u8>)>, DiffError> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(Vec::new()),
        Err(source) => {
            return Err(DiffError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for name in names {
        let Some(name) = name.to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with(whiteout::OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).map_err(|source| DiffError::Read {
            path: path.to_path_buf(),
            source,
        })? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}

fn has_opaque_xattr(dir: &Path) -> Result<bool, DiffError> {
    match xattr::get(dir, whiteout::OPAQUE_XATTR) {
        Ok(v) => Ok(v.as_deref() == Some(b"y")),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::EPERM) | Some(nix::libc::ENOTSUP)
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(DiffError::Read {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
