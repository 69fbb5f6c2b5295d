//! Dockerfile parsing and image builds with a layer cache keyed by content hashes.
//!
//! The path of a build through this crate:
//! 1. [`dockerfile::parse`] turns the text into typed [`dockerfile::Instruction`]s with
//!    positions; errors render as `Dockerfile:LINE:COL: message` plus a caret snippet.
//! 2. [`context::Context::open`] reads the context directory and its ignore file;
//!    [`context::Context::files`] lists what the build may read.
//! 3. [`plan::Plan::new`] splits stages, resolves stage references, prunes to `--target`
//!    and scopes ARGs; [`plan::Plan::resolve_stage`] expands one stage's steps given its
//!    base environment (stages in [`plan::Plan::needed`] order).
//! 4. [`copyplan::copy_items`] lays out where a COPY/ADD from the context puts each file.
//! 5. [`cachekey::CacheKey::step`] chains keys: base, then each step with the keys of
//!    what it reads ([`cachekey::copy_content_key`] over the copy's items).
//! 6. [`execute::Build`] runs it all against a store: each needed stage from its base
//!    image (or parent stage), each step looked up in the [`cache`] index by its key and
//!    otherwise executed on an overlay of the layers so far ([`run`] for RUN through
//!    berth's runtime library, [`fscopy`] and [`fetch`] for COPY/ADD, [`imageconfig`] for
//!    metadata), the upper dir committed as a layer ([`commit`]); the target stage becomes
//!    an image record per tag. [`progress`] events report each step.
#![forbid(unsafe_code)]

pub mod cache;
pub mod cachekey;
pub mod commit;
pub mod context;
pub mod copyplan;
pub mod dockerfile;
pub mod execute;
pub mod fetch;
pub mod fscopy;
mod glob;
pub mod ignore;
pub mod imageconfig;
pub mod plan;
pub mod progress;
pub mod run;
pub mod stepcgroup;
