//! Image commands: `import`, `images`, `inspect`, `tag`, `rmi`, `save`, `load`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_image::archive::{self, ArchiveFormat, SaveItem};
use berth_image::digest::Digest;
use berth_image::import::import_rootfs;
use berth_image::manifest::PlatformSpec;
use berth_image::reference::Reference;
use berth_image::store::{ImageRecord, ResolvedImage, Store};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::format::{human_duration, human_size_with_precision};
use crate::Globals;

/// `berth import FILE|- [NAME[:TAG]]`
#[derive(Args)]
pub struct ImportArgs {
    /// Root filesystem tarball (plain or gzip), or `-` for standard input.
    file: String,
    /// Name for the new image, e.g. `myimage:1.0`.
    name: Option<String>,
}

/// `berth images [REPOSITORY[:TAG]]`
#[derive(Args)]
pub struct ImagesArgs {
    /// Only show images of this repository (and tag).
    filter: Option<String>,
    /// Only print image ids.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: `table` (default) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    format: String,
    /// Show full image ids.
    #[arg(long)]
    no_trunc: bool,
}

/// `berth tag SOURCE TARGET`
#[derive(Args)]
pub struct TagArgs {
    /// Existing image (name, id or name@digest).
    source: String,
    /// New name, e.g. `registry.example/app:2`.
    target: String,
}

/// `berth rmi IMAGE...`
#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove: a name untags it; an id removes every name it has.
    #[arg(required = true)]
    images: Vec<String>,
}

/// Archive layouts for `berth save`.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `docker save` layout (manifest.json, uncompressed layers).
    DockerArchive,
    /// OCI image layout in a tar (oci-layout, index.json, blobs/).
    OciArchive,
}

/// `berth save -o FILE IMAGE...`
#[derive(Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive layout.
    #[arg(long, value_enum, default_value = "docker-archive")]
    format: FormatArg,
    /// Images to save.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `berth load [-i FILE]`
#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file (docker-archive or OCI archive, optionally gzipped)
    /// instead of standard input.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(short, long)]
    quiet: bool,
}

fn open_store(g: &Globals) -> Result<Store> {
    Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))
}

/// Runs `berth import`.
pub fn import(g: &Globals, a: ImportArgs) -> Result<()> {
    let store = open_store(g)?;
    let name = a.name.as_deref().map(Reference::parse).transpose()?;
    let _lease = store.lease()?;
    let out = if a.file == "-" {
        import_rootfs(&store, io::stdin().lock(), "-", name.as_ref())?
    } else {
        let f = File::open(&a.file).with_context(|| format!("import {}", a.file))?;
        import_rootfs(&store, f, &a.file, name.as_ref())?
    };
    println!("{}", out.id);
    Ok(())
}

/// One row of `berth images`.
struct Row {
    repository: String,
    tag: String,
    id: Digest,
    digest: Digest,
    created: Option<chrono::DateTime<chrono::Utc>>,
    size: u64,
}

fn created_of(img: &ResolvedImage) -> Option<chrono::DateTime<chrono::Utc>> {
    let v: Value = serde_json::from_slice(&img.config_raw).ok()?;
    let s = v.get("created")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// The SIZE column: decimal units with three significant digits (`4.26MB`), like Docker's.
fn human_size(n: u64) -> String {
    human_size_with_precision(n, 3)
}

/// `5 minutes ago`, `About an hour ago`, like Docker's CREATED column.
fn since(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration(chrono::Utc::now() - t)),
        None => "N/A".into(),
    }
}

fn rows(store: &Store, records: &[ImageRecord]) -> Result<Vec<Row>> {
    let platform = PlatformSpec::host();
    let mut out = Vec::new();
    for rec in records {
        let (repository, tag) = match &rec.name {
            Some(n) => (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()),
            None => ("<none>".into(), "<none>".into()),
        };
        let digest = rec.target_digest()?;
        let row = match store.resolve_record(rec, &platform) {
            Ok(img) => Row {
                repository,
                tag,
                id: img.config_digest.clone(),
                digest,
                created: created_of(&img),
                size: img.size(),
            },
            // An image with no manifest for this host (or damaged) is still
            // listed, by its target digest, so it can be inspected or removed.
            Err(e) => {
                tracing::warn!(image = %repository, error = %e, "cannot resolve image");
                Row {
                    repository,
                    tag,
                    id: digest.clone(),
                    digest,
                    created: None,
                    size: rec.target.size(),
                }
            }
        };
        out.push(row);
    }
    // Newest first, as docker images lists them.
    out.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    Ok(out)
}

/// Runs `berth images`.
pub fn images(g: &Globals, a: ImagesArgs) -> Result<()> {
    let store = open_store(g)?;
    // No lock: records and blobs appear and go whole (see the store's lock module).
    let mut records = store.list_images()?;
    if let Some(f) = &a.filter {
        let want = Reference::parse_named(f)?;
        records.retain(|r| {
            r.name.as_ref().is_some_and(|n| {
                n.name() == want.name() && want.tag().is_none_or(|t| n.tag() == Some(t))
            })
        });
    }
    let rows = rows(&store, &records)?;
    let mut out = io::stdout().lock();
    let short = |d: &Digest| {
        if a.no_trunc {
            d.to_string()
        } else {
            d.short().to_string()
        }
    };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                writeln!(out, "{}", short(&r.id))?;
            }
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            for r in &rows {
                let v = json!({
                    "Repository": r.repository,
                    "Tag": r.tag,
                    "ID": short(&r.id),
                    "Digest": r.digest.to_string(),
                    "CreatedAt": r.created.map(|c| c.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                    "CreatedSince": since(r.created),
                    "Size": human_size(r.size),
                    "VirtualSize": human_size(r.size),
                });
                writeln!(out, "{v}")?;
            }
        }
        "table" => {
            let mut table = vec![[
                "REPOSITORY".to_string(),
                "TAG".into(),
                "IMAGE ID".into(),
                "CREATED".into(),
                "SIZE".into(),
            ]];
            for r in &rows {
                table.push([
                    r.repository.clone(),
                    r.tag.clone(),
                    short(&r.id),
                    since(r.created),
                    human_size(r.size),
                ]);
            }
            let widths: Vec<usize> = (0..5)
                .map(|i| table.iter().map(|row| row[i].len()).max().unwrap_or(0))
                .collect();
            for row in &table {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
                    }
                }
                writeln!(out, "{}", line.trim_end())?;
            }
        }
        other => bail!("images: unknown --format {other:?} (use table or json)"),
    }
    Ok(())
}

/// All records whose image id is `id`.
fn records_with_id(store: &Store, id: &Digest) -> Result<Vec<ImageRecord>> {
    let platform = PlatformSpec::host();
    let mut out = Vec::new();
    for rec in store.list_images()? {
        if let Ok(img) = store.resolve_record(&rec, &platform) {
            if &img.config_digest == id {
                out.push(rec);
            }
        }
    }
    Ok(out)
}

/// Image `q`'s inspect document (Docker's shape); the caller holds the store's lock.
pub fn image_document(store: &Store, q: &str) -> Result<Value> {
    let platform = PlatformSpec::host();
    let img = store.resolve(q, &platform)?;
    let config: Value = serde_json::from_slice(&img.config_raw)
        .with_context(|| format!("image {q}: config {}", img.config_digest))?;
    let same = records_with_id(store, &img.config_digest)?;
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for r in &same {
        if let Some(n) = &r.name {
            tags.push(n.familiar());
            let d = format!("{}@{}", n.familiar_name(), r.target_digest()?);
            if !digests.contains(&d) {
                digests.push(d);
            }
        }
    }
    let diff_ids: Vec<String> = img.diff_ids()?.iter().map(|d| d.to_string()).collect();
    let field = |k: &str| {
        config
            .get(k)
            .cloned()
            .unwrap_or(Value::String(String::new()))
    };
    let mut obj = serde_json::Map::new();
    obj.insert("Id".into(), json!(img.config_digest.to_string()));
    obj.insert("RepoTags".into(), json!(tags));
    obj.insert("RepoDigests".into(), json!(digests));
    obj.insert("Parent".into(), json!(""));
    obj.insert("Comment".into(), json!(history_comment(&config)));
    obj.insert("Created".into(), field("created"));
    obj.insert("DockerVersion".into(), field("docker_version"));
    obj.insert("Author".into(), field("author"));
    obj.insert(
        "Config".into(),
        config.get("config").cloned().unwrap_or(Value::Null),
    );
    obj.insert("Architecture".into(), field("architecture"));
    if let Some(v) = config.get("variant") {
        obj.insert("Variant".into(), v.clone());
    }
    obj.insert("Os".into(), field("os"));
    obj.insert("Size".into(), json!(img.size()));
    obj.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": diff_ids}),
    );
    obj.insert(
        "Descriptor".into(),
        json!({
            "mediaType": img.manifest_media_type,
            "digest": img.manifest_digest.to_string(),
            "size": img.manifest_raw.len(),
        }),
    );
    Ok(Value::Object(obj))
}

fn history_comment(config: &Value) -> String {
    config
        .get("history")
        .and_then(|h| h.as_array())
        .and_then(|h| h.last())
        .and_then(|e| e.get("comment"))
        .and_then(|c| c.as_str())
        .unwrap_or("")
        .to_string()
}

/// Runs `berth tag`.
pub fn tag(g: &Globals, a: TagArgs) -> Result<()> {
    let store = open_store(g)?;
    let target = Reference::parse(&a.target)?;
    if target.digest().is_some() {
        bail!("tag {}: a target name cannot contain a digest", a.target);
    }
    let _lease = store.lease()?;
    let _records = store.lock_records()?;
    let recs = store.find_images(&a.source, &PlatformSpec::host())?;
    let Some(rec) = recs.first() else {
        bail!("image {:?}: no such image", a.source);
    };
    store.put_image(Some(&target), &rec.target)?;
    Ok(())
}

/// Runs `berth rmi`. Removing the last name of an image makes its blobs and
/// snapshots unreferenced; `berth system gc` reclaims the space.
pub fn rmi(g: &Globals, a: RmiArgs) -> Result<()> {
    let store = open_store(g)?;
    let _records = store.lock_records()?;
    let platform = PlatformSpec::host();
    let mut failures: Vec<anyhow::Error> = Vec::new();
    for q in &a.images {
        let result = (|| -> Result<()> {
            let recs = store.find_images(q, &platform)?;
            // The image id; unknown when the image has no manifest for this host.
            let id = store
                .resolve_record(&recs[0], &platform)
                .ok()
                .map(|img| img.config_digest);
            // A name removes just that name; an id removes all of them.
            let by_name = Reference::parse(q)
                .ok()
                .is_some_and(|r| recs.len() == 1 && recs[0].name.as_ref() == Some(&r));
            let doomed = match &id {
                Some(id) if !by_name => records_with_id(&store, id)?,
                _ => recs,
            };
            for rec in &doomed {
                store.remove_image(rec)?;
                if let Some(n) = &rec.name {
                    println!("Untagged: {}", n.familiar());
                }
            }
            if let Some(id) = id {
                if records_with_id(&store, &id)?.is_empty() {
                    println!("Deleted: {id}");
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(e.context(format!("rmi {q}")));
        }
    }
    // Every failure gets its own `berth: ` line; the last one is the exit error.
    let last = failures.pop();
    for e in &failures {
        eprintln!("berth: {e:#}");
    }
    match last {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `berth save`.
pub fn save(g: &Globals, a: SaveArgs) -> Result<()> {
    let store = open_store(g)?;
    let _lease = store.lease()?;
    let platform = PlatformSpec::host();
    let mut items: Vec<SaveItem> = Vec::new();
    let mut by_id: BTreeMap<Digest, usize> = BTreeMap::new();
    for q in &a.images {
        let recs = store.find_images(q, &platform)?;
        let img = store.resolve_record(&recs[0], &platform)?;
        let names: Vec<Reference> = recs.iter().filter_map(|r| r.name.clone()).collect();
        match by_id.get(&img.config_digest) {
            Some(&i) => {
                for n in names {
                    if !items[i].names.contains(&n) {
                        items[i].names.push(n);
                    }
                }
            }
            None => {
                by_id.insert(img.config_digest.clone(), items.len());
                items.push(SaveItem { image: img, names });
            }
        }
    }
    let format = match a.format {
        FormatArg::DockerArchive => ArchiveFormat::DockerArchive,
        FormatArg::OciArchive => ArchiveFormat::OciArchive,
    };
    match &a.output {
        Some(path) => save_to_file(&store, &items, format, path),
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("save: refusing to write an archive to a terminal; use -o FILE or redirect");
            }
            archive::save(&store, &items, format, stdout.lock(), "-")?;
            Ok(())
        }
    }
}

/// Writes the archive to a temporary file beside `path` and renames it into
/// place, so a failed save never leaves a truncated archive under the name.
fn save_to_file(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    path: &Path,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .with_context(|| format!("save: {} is not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.berth-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let f = File::create(&tmp).with_context(|| format!("save: create {}", tmp.display()))?;
        archive::save(store, items, format, &f, &path.display().to_string())?;
        f.sync_all()
            .with_context(|| format!("save: fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("save: rename to {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `berth load`.
pub fn load(g: &Globals, a: LoadArgs) -> Result<()> {
    let store = open_store(g)?;
    let _lease = store.lease()?;
    let loaded = match &a.input {
        Some(p) => {
            let f = archive::open_input(p)?;
            archive::load(&store, f, &p.display().to_string())?
        }
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                bail!("load: standard input is a terminal; use -i FILE or redirect an archive");
            }
            archive::load(&store, stdin.lock(), "-")?
        }
    };
    if !a.quiet {
        for (name, id) in &loaded.images {
            match name {
                Some(n) => println!("Loaded image: {}", n.familiar()),
                None => println!("Loaded image ID: {id}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(104_857_600), "105MB");
        assert_eq!(human_size(1_500), "1.5kB");
    }

    #[test]
    fn created_reads_like_docker() {
        let ago = |d: chrono::Duration| since(Some(chrono::Utc::now() - d));
        assert_eq!(ago(chrono::Duration::seconds(90)), "About a minute ago");
        assert_eq!(ago(chrono::Duration::hours(5)), "5 hours ago");
        assert_eq!(ago(chrono::Duration::days(20)), "2 weeks ago");
        assert_eq!(since(None), "N/A");
    }
}
