//! Layer cache keys. A step's key is a SHA-256 over its parent's key and its exact inputs:
//! the instruction after expansion (positions left out), the ARG and ENV values it sees,
//! and the keys of what it reads (context files, other stages). Context files are hashed
//! by path, type, mode, owner, symlink target and content, never by timestamps, so a
//! `touch` keeps the cache and one changed byte invalidates this step and all later ones.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::copyplan::CopyItem;
use crate::dockerfile::Instruction;
use crate::plan::Step;

/// Why a cache key could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CacheKeyError {
    /// A context file could not be read.
    #[error("hashing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The instruction could not be encoded (cannot happen for parsed instructions).
    #[error("encoding instruction for its cache key: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A SHA-256 cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

/// Feeds length-prefixed fields into a hasher so no two field lists collide.
struct Fields(Sha256);

impl Fields {
    fn new(domain: &str) -> Self {
        let mut f = Fields(Sha256::new());
        f.bytes(domain.as_bytes());
        f
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }
    fn num(&mut self, n: u64) {
        self.0.update(n.to_le_bytes());
    }
    fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

impl CacheKey {
    /// The key of a stage's starting point: `scratch`, or an image by its config digest.
    pub fn base(id: &str) -> Self {
        let mut f = Fields::new("berth-base-v1");
        f.bytes(id.as_bytes());
        f.finish()
    }

    /// The key of `step` on top of `parent`; `inputs` are the keys of what the step reads
    /// (context files from [`copy_content_key`], source stages' keys), in a fixed order.
    pub fn step(
        parent: &CacheKey,
        step: &Step,
        inputs: &[CacheKey],
    ) -> Result<Self, CacheKeyError> {
        let mut f = Fields::new("berth-step-v1");
        f.bytes(&parent.0);
        f.bytes(&instruction_bytes(&step.instruction)?);
        for vars in [&step.args, &step.env] {
            f.num(vars.len() as u64);
            for (k, v) in vars {
                f.bytes(k.as_bytes());
                f.bytes(v.as_bytes());
            }
        }
        f.num(inputs.len() as u64);
        for i in inputs {
            f.bytes(&i.0);
        }
        Ok(f.finish())
    }
}

/// The instruction's canonical JSON without positions: moving a line keeps its key.
fn instruction_bytes(inst: &Instruction) -> Result<Vec<u8>, serde_json::Error> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.remove("span");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(inst)?;
    strip(&mut value);
    serde_json::to_vec(&value)
}

/// What of a file goes into its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Context-relative slash-separated path.
    pub path: String,
    /// `f` file, `d` directory, `l` symlink, `o` other.
    pub kind: char,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target, for symlinks.
    pub link_target: Option<String>,
    /// SHA-256 of the content, for regular files.
    pub content: Option<[u8; 32]>,
}

impl EntryMeta {
    /// Reads an entry's metadata and content hash (without following a final symlink).
    pub fn read(root: &Path, rel: &str) -> Result<Self, CacheKeyError> {
        let path = root.join(rel);
        let io_err = |source| CacheKeyError::Io {
            path: path.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&path).map_err(io_err)?;
        let ft = meta.file_type();
        let (kind, link_target, content) = if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err)?;
            ('l', Some(target.to_string_lossy().into_owned()), None)
        } else if ft.is_dir() {
            ('d', None, None)
        } else if ft.is_file() {
            let mut file = fs::File::open(&path).map_err(io_err)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(io_err)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            ('f', None, Some(hasher.finalize().into()))
        } else {
            ('o', None, None)
        };
        Ok(Self {
            path: rel.to_string(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            link_target,
            content,
        })
    }

    /// The entry's hash: everything above, and nothing else (no times, no inode).
    pub fn hash(&self) -> CacheKey {
        let mut f = Fields::new("berth-entry-v1");
        f.bytes(self.path.as_bytes());
        f.bytes(&[self.kind as u8]);
        f.num(self.mode.into());
        f.num(self.uid.into());
        f.num(self.gid.into());
        f.bytes(self.link_target.as_deref().unwrap_or_default().as_bytes());
        f.bytes(&self.content.unwrap_or_default());
        f.finish()
    }
}

/// The content key of a COPY/ADD from the context: each item's entry hash (path, type,
/// mode, owner, link target, content) and its destination, in destination order.
/// `items` comes from [`copy_items`](crate::copyplan::copy_items).
pub fn copy_content_key(ctx: &Context, items: &[CopyItem]) -> Result<CacheKey, CacheKeyError> {
    let mut f = Fields::new("berth-content-v2");
    f.num(items.len() as u64);
    for item in items {
        f.bytes(&EntryMeta::read(ctx.root(), &item.source)?.hash().0);
        f.bytes(item.dest.as_bytes());
    }
    Ok(f.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copyplan::{copy_items, CopyRequest};
    use crate::dockerfile::parse;

    use crate::plan::{Plan, PlanOptions, StageBase};
    use std::time::{Duration, SystemTime};

    const DOCKERFILE: &str = "FROM scratch\nCOPY app/ /app/\nRUN build\nENV A=1\n";

    /// The keys of every step of DOCKERFILE over the context in `dir`.
    fn keys(dir: &Path) -> Vec<CacheKey> {
        let df = parse("Dockerfile", DOCKERFILE).unwrap();
        let plan = Plan::new(&df, &PlanOptions::default()).unwrap();
        let stage = plan.resolve_stage(0, &StageBase::default()).unwrap();
        let ctx = Context::open(dir, None).unwrap();
        let files = ctx.files().unwrap();
        let mut parent = CacheKey::base("scratch");
        let mut out = Vec::new();
        for step in &stage.steps {
            let inputs = match &step.instruction {
                Instruction::Copy { args, .. } => {
                    let sources: Vec<String> =
                        args.sources.iter().map(|s| s.value.clone()).collect();
                    let req = CopyRequest {
                        sources: &sources,
                        dest: &args.dest,
                        workdir: "/",
                        parents: args.parents,
                        exclude: &args.exclude,
                        dest_is_dir: false,
                    };
                    let items = copy_items(&ctx, &files, &req).unwrap();
                    vec![copy_content_key(&ctx, &items).unwrap()]
                }
                _ => Vec::new(),
            };
            parent = CacheKey::step(&parent, step, &inputs).unwrap();
            out.push(parent);
        }
        out
    }

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("app")).unwrap();
        fs::write(dir.path().join("app/main.c"), b"int main(){return 0;}\n").unwrap();
        fs::write(dir.path().join("app/README"), b"readme\n").unwrap();
        fs::write(dir.path().join("other"), b"not copied\n").unwrap();
        dir
    }

    #[test]
    fn touch_keeps_every_key() {
        let dir = context();
        let before = keys(dir.path());
        let file = fs::File::options()
            .write(true)
            .open(dir.path().join("app/main.c"))
            .unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(3600))
            .unwrap();
        drop(file);
        assert_eq!(keys(dir.path()), before);
    }

    #[test]
    fn one_changed_byte_changes_this_and_every_later_key() {
        let dir = context();
        let before = keys(dir.path());
        fs::write(dir.path().join("app/main.c"), b"int main(){return 1;}\n").unwrap();
        let after = keys(dir.path());
        assert_eq!(before.len(), 3);
        for (b, a) in before.iter().zip(&after) {
            assert_ne!(b, a);
        }
    }

    #[test]
    fn files_outside_the_sources_do_not_matter() {
        let dir = context();
        let before = keys(dir.path());
        fs::write(dir.path().join("other"), b"changed\n").unwrap();
        assert_eq!(keys(dir.path()), before);
    }

    #[test]
    fn mode_and_symlink_target_change_the_key() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = context();
        let before = keys(dir.path());
        fs::set_permissions(
            dir.path().join("app/main.c"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let chmodded = keys(dir.path());
        assert_ne!(chmodded[0], before[0]);
        symlink("main.c", dir.path().join("app/link")).unwrap();
        let linked = keys(dir.path());
        fs::remove_file(dir.path().join("app/link")).unwrap();
        symlink("README", dir.path().join("app/link")).unwrap();
        assert_ne!(keys(dir.path())[0], linked[0]);
    }

    #[test]
    fn entry_hash_covers_owner_and_ignores_nothing_else() {
        let e = EntryMeta {
            path: "a".into(),
            kind: 'f',
            mode: 0o644,
            uid: 0,
            gid: 0,
            link_target: None,
            content: Some([1; 32]),
        };
        let mut uid = e.clone();
        uid.uid = 1000;
        let mut gid = e.clone();
        gid.gid = 1000;
        let mut path = e.clone();
        path.path = "b".into();
        let all = [e.hash(), uid.hash(), gid.hash(), path.hash()];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn args_env_and_line_moves() {
        let key = |text: &str, args: &[(&str, &str)]| {
            let df = parse("Dockerfile", text).unwrap();
            let opts = PlanOptions {
                build_args: args
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..PlanOptions::default()
            };
            let plan = Plan::new(&df, &opts).unwrap();
            let stage = plan.resolve_stage(0, &StageBase::default()).unwrap();
            let mut parent = CacheKey::base("scratch");
            for step in &stage.steps {
                parent = CacheKey::step(&parent, step, &[]).unwrap();
            }
            parent
        };
        let text = "FROM scratch\nARG V=1\nRUN make\n";
        assert_eq!(
            key(text, &[]),
            key("FROM scratch\n\n\nARG V=1\nRUN make\n", &[])
        );
        assert_ne!(key(text, &[]), key(text, &[("V", "2")]));
        // Proxy args do not enter keys unless declared.
        assert_eq!(
            key(text, &[]),
            key(text, &[("HTTP_PROXY", "http://p:3128")])
        );
        assert_ne!(
            key("FROM scratch\nARG HTTP_PROXY\nRUN make\n", &[]),
            key(
                "FROM scratch\nARG HTTP_PROXY\nRUN make\n",
                &[("HTTP_PROXY", "http://p:3128")]
            )
        );
    }

    #[test]
    fn exclude_patterns_drop_files_from_the_key() {
        let dir = context();
        let ctx = Context::open(dir.path(), None).unwrap();
        let files = ctx.files().unwrap();
        let src = vec!["app/".to_string()];
        let ex = vec!["README".to_string()];
        let key = |exclude: &[String]| {
            let req = CopyRequest {
                sources: &src,
                dest: "/app/",
                workdir: "/",
                parents: false,
                exclude,
                dest_is_dir: false,
            };
            copy_content_key(&ctx, &copy_items(&ctx, &files, &req).unwrap()).unwrap()
        };
        let before = key(&ex);
        fs::write(dir.path().join("app/README"), b"changed\n").unwrap();
        assert_eq!(key(&ex), before);
        assert_ne!(key(&[]), before);
    }
}
