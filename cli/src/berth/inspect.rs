//! `berth inspect` (and `berth container inspect`): containers in Docker's JSON shape, and
//! images when no container has the name (Docker's lookup order), optionally through a
//! `--format` template.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::container::{self, ContainerError};
use clap::Args;
use serde_json::Value;

use crate::format::Template;
use crate::{containers, images, Globals};

/// `berth inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format each object with a Go template (`{{.State.Status}}`, `{{json .Config}}`, ...).
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only look for objects of this type: container or image.
    #[arg(long = "type", value_parser = ["container", "image"])]
    kind: Option<String>,
    /// Container or image names or ids.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Prints the objects as one JSON array, or each through the template; a name that matches
/// nothing is reported and makes the exit status 1, as Docker's.
pub fn inspect(g: &Globals, a: InspectArgs) -> Result<ExitCode> {
    let template = a
        .format
        .as_deref()
        .map(Template::parse)
        .transpose()
        .context("--format")?;
    let c = containers::open(g)?;
    let mut docs = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let found = match a.kind.as_deref() {
            Some("image") => image_doc(g, name)?,
            Some(_) => container_doc(&c, name)?,
            None => match container_doc(&c, name)? {
                Some(doc) => Some(doc),
                None => image_doc(g, name)?,
            },
        };
        match found {
            Some(doc) => docs.push(doc),
            None => {
                let what = match a.kind.as_deref() {
                    Some("image") => "image",
                    Some(_) => "container",
                    None => "object",
                };
                eprintln!("berth: no such {what}: {name}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match &template {
        Some(t) => {
            for doc in &docs {
                let text = t.render(doc)?;
                writeln!(out, "{text}")?;
            }
        }
        None => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Value::Array(docs))?
        )?,
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn container_doc(c: &container::Containers, name: &str) -> Result<Option<Value>> {
    match c.lookup(name) {
        Ok(config) => Ok(Some(container::inspect(c, &config)?)),
        Err(ContainerError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn image_doc(g: &Globals, name: &str) -> Result<Option<Value>> {
    let store = berth_image::store::Store::open(&g.root)?;
    match images::image_document(&store, name) {
        Ok(doc) => Ok(Some(doc)),
        Err(e) if is_unknown_image(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_unknown_image(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<berth_image::store::StoreError>(),
        Some(berth_image::store::StoreError::ImageNotFound(_))
    )
}
