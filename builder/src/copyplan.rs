//! Where COPY/ADD from the build context puts each file, by Docker's rules: a directory
//! source copies its contents, a file goes into a destination ending in `/` (or already a
//! directory) under its own name and otherwise becomes the destination, several sources
//! need a directory destination, a relative destination is under WORKDIR, `--parents`
//! keeps the source's path (below a `/./` pivot if there is one), and `--exclude` drops
//! matches relative to each source.

use crate::context::{clean_segments, Context, ContextError};
use crate::ignore::{IgnoreError, IgnorePatterns};

/// Why a copy could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum CopyPlanError {
    /// A source does not resolve in the context.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// An `--exclude` pattern is invalid.
    #[error(transparent)]
    Exclude(#[from] IgnoreError),
    /// Several sources with a destination that is not a directory.
    #[error("when copying more than one source ({count} here), the destination {dest:?} must be a directory and end with a /")]
    DestinationNotDirectory {
        /// The destination as given.
        dest: String,
        /// How many sources matched.
        count: usize,
    },
}

/// One context entry and the absolute path it gets in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CopyItem {
    /// Context-relative slash-separated path.
    pub source: String,
    /// Absolute, cleaned path in the image.
    pub dest: String,
}

/// A COPY/ADD from the context, with expanded values.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// Sources as written after expansion (wildcards allowed).
    pub sources: &'a [String],
    /// The destination after expansion.
    pub dest: &'a str,
    /// The WORKDIR in effect (absolute).
    pub workdir: &'a str,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: &'a [String],
    /// Whether the destination already exists as a directory in the image below.
    pub dest_is_dir: bool,
}

fn join(base: &str, rel: &str) -> String {
    let joined = format!("{base}/{rel}");
    format!("/{}", clean_segments(&joined).join("/"))
}

/// Lays out a copy: every included context entry it reads and where it goes, sorted by
/// destination. `files` is [`Context::files`].
pub fn copy_items(
    ctx: &Context,
    files: &[String],
    req: &CopyRequest<'_>,
) -> Result<Vec<CopyItem>, CopyPlanError> {
    let excludes = IgnorePatterns::parse("--exclude", &req.exclude.join("\n"))?;
    let dest_abs = if req.dest.starts_with('/') {
        join("", req.dest)
    } else {
        join(req.workdir, req.dest)
    };
    let dest_dir =
        req.dest.ends_with('/') || req.dest == "." || req.dest.ends_with("/.") || req.dest_is_dir;
    let is_dir = |p: &str| p.is_empty() || files.iter().any(|f| f.starts_with(&format!("{p}/")));

    // Each source's top-level matches: (matched path, the root its contents hang from).
    let mut tops: Vec<(String, String)> = Vec::new();
    for source in req.sources {
        let segs = clean_segments(source);
        // The `/./` pivot of --parents: what comes after it is kept.
        let pivot = source
            .split('/')
            .position(|s| s == ".")
            .filter(|&i| i > 0 && req.parents)
            .map(|i| {
                clean_segments(&source.split('/').take(i).collect::<Vec<_>>().join("/")).len()
            });
        let depth = segs.len();
        let selected = ctx.resolve(source, files)?;
        let matched: Vec<&String> = selected
            .iter()
            .filter(|p| p.split('/').count() == depth || (depth == 0 && p.is_empty()))
            .collect();
        let matched: Vec<String> = if depth == 0 {
            vec![String::new()]
        } else {
            matched.into_iter().cloned().collect()
        };
        for m in matched {
            let keep_from = match (req.parents, pivot) {
                (true, Some(p)) => p,
                (true, None) => 0,
                (false, _) => depth,
            };
            let root = m.split('/').take(keep_from).collect::<Vec<_>>().join("/");
            tops.push((m, root));
        }
    }
    if (tops.len() > 1 || req.sources.len() > 1) && !dest_dir {
        return Err(CopyPlanError::DestinationNotDirectory {
            dest: req.dest.to_string(),
            count: tops.len(),
        });
    }

    let mut items = Vec::new();
    for (top, root) in &tops {
        let strip = |p: &str, base: &str| -> String {
            if base.is_empty() {
                p.to_string()
            } else {
                p.strip_prefix(base)
                    .map(|r| r.trim_start_matches('/').to_string())
                    .unwrap_or_default()
            }
        };
        if is_dir(top) {
            // The directory's contents go to dest (under the kept path with --parents).
            let under = if req.parents {
                strip(top, root)
            } else {
                String::new()
            };
            let target = join(&dest_abs, &under);
            if !top.is_empty() && req.parents {
                items.push(CopyItem {
                    source: top.clone(),
                    dest: target.clone(),
                });
            }
            for f in files {
                let Some(rel) = (if top.is_empty() {
                    Some(f.as_str())
                } else {
                    f.strip_prefix(&format!("{top}/"))
                }) else {
                    continue;
                };
                if excludes.is_excluded(rel) {
                    continue;
                }
                items.push(CopyItem {
                    source: f.clone(),
                    dest: join(&target, rel),
                });
            }
        } else {
            let name = top.rsplit('/').next().unwrap_or(top);
            if excludes.is_excluded(name) {
                continue;
            }
            let dest = if req.parents {
                join(&dest_abs, &strip(top, root))
            } else if dest_dir {
                join(&dest_abs, name)
            } else {
                dest_abs.clone()
            };
            items.push(CopyItem {
                source: top.clone(),
                dest,
            });
        }
    }
    items.sort_by(|a, b| a.dest.cmp(&b.dest).then(a.source.cmp(&b.source)));
    items.dedup();
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn ctx() -> (tempfile::TempDir, Context, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "app/main.c",
            "app/README.md",
            "app/lib/util.c",
            "a.txt",
            "b.txt",
            "pkg/x/y/file.go",
            "pkg/z/file.go",
        ] {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        let ctx = Context::open(dir.path(), None).unwrap();
        let files = ctx.files().unwrap();
        (dir, ctx, files)
    }

    fn req<'a>(sources: &'a [String], dest: &'a str) -> CopyRequest<'a> {
        CopyRequest {
            sources,
            dest,
            workdir: "/work",
            parents: false,
            exclude: &[],
            dest_is_dir: false,
        }
    }

    fn pairs(items: Vec<CopyItem>) -> Vec<(String, String)> {
        items.into_iter().map(|i| (i.source, i.dest)).collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn directory_source_copies_contents() {
        let (_d, ctx, files) = ctx();
        let src = s(&["app"]);
        let got = pairs(copy_items(&ctx, &files, &req(&src, "/opt/app")).unwrap());
        assert_eq!(
            got,
            vec![
                ("app/README.md".into(), "/opt/app/README.md".into()),
                ("app/lib".into(), "/opt/app/lib".into()),
                ("app/lib/util.c".into(), "/opt/app/lib/util.c".into()),
                ("app/main.c".into(), "/opt/app/main.c".into()),
            ]
        );
    }

    #[test]
    fn file_destination_rules() {
        let (_d, ctx, files) = ctx();
        let src = s(&["a.txt"]);
        let file = pairs(copy_items(&ctx, &files, &req(&src, "/etc/renamed")).unwrap());
        assert_eq!(file, vec![("a.txt".into(), "/etc/renamed".into())]);
        let into = pairs(copy_items(&ctx, &files, &req(&src, "/etc/")).unwrap());
        assert_eq!(into, vec![("a.txt".into(), "/etc/a.txt".into())]);
        let mut existing = req(&src, "/etc");
        existing.dest_is_dir = true;
        let into = pairs(copy_items(&ctx, &files, &existing).unwrap());
        assert_eq!(into, vec![("a.txt".into(), "/etc/a.txt".into())]);
        let rel = pairs(copy_items(&ctx, &files, &req(&src, ".")).unwrap());
        assert_eq!(rel, vec![("a.txt".into(), "/work/a.txt".into())]);
    }

    #[test]
    fn several_sources_need_a_directory() {
        let (_d, ctx, files) = ctx();
        let src = s(&["*.txt"]);
        assert!(matches!(
            copy_items(&ctx, &files, &req(&src, "/one")),
            Err(CopyPlanError::DestinationNotDirectory { count: 2, .. })
        ));
        let got = pairs(copy_items(&ctx, &files, &req(&src, "/d/")).unwrap());
        assert_eq!(
            got,
            vec![
                ("a.txt".into(), "/d/a.txt".into()),
                ("b.txt".into(), "/d/b.txt".into())
            ]
        );
    }

    #[test]
    fn exclude_is_relative_to_each_source() {
        let (_d, ctx, files) = ctx();
        let src = s(&["app/"]);
        let ex = s(&["*.md", "lib"]);
        let mut r = req(&src, "/app/");
        r.exclude = &ex;
        let got = pairs(copy_items(&ctx, &files, &r).unwrap());
        assert_eq!(got, vec![("app/main.c".into(), "/app/main.c".into())]);
    }

    #[test]
    fn parents_keep_paths_below_the_pivot() {
        let (_d, ctx, files) = ctx();
        let src = s(&["pkg/*/file.go"]);
        let mut r = req(&src, "/src/");
        r.parents = true;
        let got = pairs(copy_items(&ctx, &files, &r).unwrap());
        assert_eq!(
            got,
            vec![("pkg/z/file.go".into(), "/src/pkg/z/file.go".into())]
        );
        let src = s(&["pkg/./x/y/file.go"]);
        let mut r = req(&src, "/src/");
        r.parents = true;
        let got = pairs(copy_items(&ctx, &files, &r).unwrap());
        assert_eq!(
            got,
            vec![("pkg/x/y/file.go".into(), "/src/x/y/file.go".into())]
        );
    }

    #[test]
    fn whole_context() {
        let (_d, ctx, files) = ctx();
        let src = s(&["."]);
        let got = copy_items(&ctx, &files, &req(&src, "/c/")).unwrap();
        assert_eq!(got.len(), files.len());
        assert!(got.iter().any(|i| i.dest == "/c/pkg/x/y/file.go"));
    }
}
