//! The Kubernetes-style commands, as clients of `berth daemon`: `get`, `delete`, `describe`,
//! `logs POD`, `rollout status|history|undo`, `scale` (and `apply` in `kube_apply`). They reach
//! the daemon of `--root` over its unix socket, or `--server https://127.0.0.1:PORT`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_apiserver::client::{Client, Endpoint};
use berth_kube::kinds::{self, Kind};
use clap::Args;
use serde_json::{json, Value};

use crate::kube_output::{print_table, to_yaml};
use crate::Globals;

/// The Accept header asking for the `Table` form.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json";

/// Where the daemon is and which namespace a command works in.
#[derive(Args, Clone)]
pub struct Conn {
    /// Namespace (default: `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The daemon: `https://127.0.0.1:PORT` or a socket path (default: `$ROOT/daemon/api.sock`).
    #[arg(long, env = "BERTH_SERVER")]
    pub server: Option<String>,
}

impl Conn {
    /// The namespace to work in.
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// A client of the daemon.
    pub fn client(&self, g: &Globals) -> Result<Client> {
        Ok(Client::new(Endpoint::for_root(
            &g.root,
            self.server.as_deref(),
        )?)?)
    }
}

/// A served type named as kubectl names it (`po`, `deploy`, `configmaps`).
pub fn kind(name: &str) -> Result<&'static Kind> {
    kinds::by_name(name).with_context(|| {
        format!("the server doesn't have a resource type {name:?} (served: pods, services, endpoints, configmaps, secrets, namespaces, persistentvolumes, persistentvolumeclaims, events, replicasets, deployments)")
    })
}

/// `KIND/NAME` or `KIND NAME...` into a type and names.
fn kind_and_names(args: &[String]) -> Result<(&'static Kind, Vec<String>)> {
    let Some(first) = args.first() else {
        bail!("name a resource type (e.g. `pods`) or TYPE/NAME");
    };
    if let Some((k, n)) = first.split_once('/') {
        let k = kind(k)?;
        let mut names = vec![n.to_string()];
        for a in &args[1..] {
            match a.split_once('/') {
                Some((k2, n2)) if kind(k2)? == k => names.push(n2.to_string()),
                _ => bail!("{a}: mix TYPE/NAME arguments of one type only"),
            }
        }
        return Ok((k, names));
    }
    Ok((kind(first)?, args[1..].to_vec()))
}

/// `berth get`.
#[derive(Args)]
pub struct GetArgs {
    /// TYPE [NAME...] or TYPE/NAME...
    #[arg(required = true)]
    args: Vec<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// Output: yaml, json, wide, name.
    #[arg(short = 'o', long)]
    output: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Lists or shows objects, as `kubectl get`.
pub fn get(g: &Globals, a: GetArgs) -> Result<ExitCode> {
    let (kind, names) = kind_and_names(&a.args)?;
    let client = a.conn.client(g)?;
    let ns = (!a.all_namespaces).then(|| a.conn.ns());
    let output = a.output.as_deref().unwrap_or("");
    if !matches!(output, "" | "wide" | "yaml" | "json" | "name") {
        bail!("-o {output}: expected yaml, json, wide or name");
    }
    let mut query = Vec::new();
    if let Some(s) = &a.selector {
        query.push(format!("labelSelector={}", encode(s)));
    }
    let list_path = format!("{}?{}", kind.collection_path(ns), query.join("&"));
    match output {
        "" | "wide" => {
            let mut tables = Vec::new();
            if names.is_empty() {
                let answer = client.request("GET", &list_path, None, TABLE, Vec::new())?;
                tables.push(serde_json::from_slice::<Value>(&answer.body)?);
            } else {
                for n in &names {
                    let answer = client.request(
                        "GET",
                        &kind.object_path(a.conn.ns(), n),
                        None,
                        TABLE,
                        Vec::new(),
                    )?;
                    tables.push(serde_json::from_slice::<Value>(&answer.body)?);
                }
            }
            let mut merged = tables.first().cloned().unwrap_or(json!({}));
            merged["rows"] = json!(tables
                .iter()
                .flat_map(|t| t["rows"].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>());
            if merged["rows"].as_array().is_none_or(Vec::is_empty) {
                match ns {
                    Some(ns) if kind.namespaced => {
                        eprintln!("No resources found in {ns} namespace.")
                    }
                    _ => eprintln!("No resources found"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            print_table(
                &merged,
                output == "wide",
                a.all_namespaces && kind.namespaced,
                None,
                true,
            );
        }
        _ => {
            let items: Vec<Value> = if names.is_empty() {
                client.json("GET", &list_path, None, None)?["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            } else {
                names
                    .iter()
                    .map(|n| client.json("GET", &kind.object_path(a.conn.ns(), n), None, None))
                    .collect::<Result<_, _>>()?
            };
            let single = names.len() == 1;
            match output {
                "name" => {
                    for o in &items {
                        println!(
                            "{}/{}",
                            kind.display_name(),
                            o["metadata"]["name"].as_str().unwrap_or_default()
                        );
                    }
                }
                _ => {
                    let value = if single {
                        items.into_iter().next().unwrap_or(Value::Null)
                    } else {
                        json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
                    };
                    if output == "json" {
                        println!("{}", serde_json::to_string_pretty(&value)?);
                    } else {
                        print!("{}", to_yaml(&value));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth delete`.
#[derive(Args)]
pub struct DeleteArgs {
    /// TYPE NAME... or TYPE/NAME... (or -f).
    args: Vec<String>,
    /// Delete the objects of these manifest files or directories (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    files: Vec<std::path::PathBuf>,
    /// Label selector: delete every matching object of TYPE.
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// What happens to owned objects: background, foreground or orphan.
    #[arg(long, default_value = "background")]
    cascade: String,
    #[command(flatten)]
    conn: Conn,
}

/// Deletes objects, as `kubectl delete`.
pub fn delete(g: &Globals, a: DeleteArgs) -> Result<ExitCode> {
    let policy = match a.cascade.as_str() {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => bail!("--cascade {other}: expected background, foreground or orphan"),
    };
    let client = a.conn.client(g)?;
    let mut targets: Vec<(&'static Kind, String, String)> = Vec::new();
    if !a.files.is_empty() {
        if !a.args.is_empty() || a.selector.is_some() {
            bail!("give either -f FILE or TYPE NAME / -l SELECTOR, not both");
        }
        for m in crate::kube_apply::load(&a.files)? {
            let (kind, ns, name) = crate::kube_apply::identity(&m, a.conn.ns())?;
            targets.push((kind, ns, name));
        }
    } else {
        let (kind, names) = kind_and_names(&a.args)?;
        if names.is_empty() {
            let Some(sel) = &a.selector else {
                bail!("name the {} to delete, or give -l SELECTOR", kind.plural);
            };
            let path = format!(
                "{}?labelSelector={}",
                kind.collection_path(Some(a.conn.ns())),
                encode(sel)
            );
            for o in client.json("GET", &path, None, None)?["items"]
                .as_array()
                .into_iter()
                .flatten()
            {
                targets.push((
                    kind,
                    a.conn.ns().to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
            if targets.is_empty() {
                eprintln!("No resources found");
            }
        } else {
            targets.extend(
                names
                    .into_iter()
                    .map(|n| (kind, a.conn.ns().to_string(), n)),
            );
        }
    }
    let mut failed = false;
    let body = json!({"propagationPolicy": policy});
    for (kind, ns, name) in targets {
        match client.json(
            "DELETE",
            &kind.object_path(&ns, &name),
            Some("application/json"),
            Some(&body),
        ) {
            Ok(_) => println!("{} {name:?} deleted", kind.display_name()),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `berth describe`.
#[derive(Args)]
pub struct DescribeArgs {
    /// TYPE NAME or TYPE/NAME.
    #[arg(required = true)]
    args: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

/// Shows an object's metadata, spec, status and events.
pub fn describe(g: &Globals, a: DescribeArgs) -> Result<ExitCode> {
    let (kind, names) = kind_and_names(&a.args)?;
    if names.is_empty() {
        bail!("name the {} to describe", kind.singular);
    }
    let client = a.conn.client(g)?;
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let o = client.json("GET", &kind.object_path(a.conn.ns(), name), None, None)?;
        let m = &o["metadata"];
        let row = |k: &str, v: String| println!("{:<14}{v}", format!("{k}:"));
        row("Name", name.clone());
        if kind.namespaced {
            row(
                "Namespace",
                m["namespace"].as_str().unwrap_or_default().to_string(),
            );
        }
        row("Labels", pairs(&m["labels"], &[]));
        row(
            "Annotations",
            pairs(
                &m["annotations"],
                &["kubectl.kubernetes.io/last-applied-configuration"],
            ),
        );
        row(
            "Created",
            m["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if let Some(owners) = m["ownerReferences"].as_array() {
            for r in owners {
                row(
                    "Controlled By",
                    format!(
                        "{}/{}",
                        r["kind"].as_str().unwrap_or_default(),
                        r["name"].as_str().unwrap_or_default()
                    ),
                );
            }
        }
        let mut rest = o.clone();
        if let Some(map) = rest.as_object_mut() {
            for k in ["apiVersion", "kind", "metadata"] {
                map.remove(k);
            }
        }
        if rest.as_object().is_some_and(|m| !m.is_empty()) {
            print!("{}", to_yaml(&rest));
        }
        let selector = format!(
            "involvedObject.name={name},involvedObject.kind={}",
            kind.kind
        );
        let events = client.json(
            "GET",
            &format!(
                "{}?fieldSelector={}",
                kinds::EVENT.collection_path(Some(a.conn.ns())),
                encode(&selector)
            ),
            None,
            None,
        )?;
        match events["items"].as_array() {
            Some(items) if !items.is_empty() => {
                println!("Events:");
                for e in items {
                    println!(
                        "  {:<8}{:<20}{}",
                        e["type"].as_str().unwrap_or_default(),
                        e["reason"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    );
                }
            }
            _ => println!("Events:       <none>"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pairs(map: &Value, skip: &[&str]) -> String {
    let items: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if items.is_empty() {
        "<none>".into()
    } else {
        items.join("\n              ")
    }
}

/// `berth logs`: of a berth container, or of a container of a daemon pod.
#[derive(Args)]
pub struct LogsArgs {
    /// Keep printing output until the container exits.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(long, default_value = "all")]
    tail: String,
    /// Prefix each line with its timestamp.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Only lines since a time (RFC 3339, Unix seconds, or a duration ago such as 10m);
    /// berth containers only.
    #[arg(long)]
    since: Option<String>,
    /// The pod's container (TARGET is then a pod).
    #[arg(short = 'c', long)]
    container: Option<String>,
    #[command(flatten)]
    conn: Conn,
    /// A berth container (name or id), or a pod of the daemon as pod/NAME. A NAME that is no
    /// berth container, or any use of -c or -n, means a pod.
    target: String,
}

/// Prints the log of a container, or of a pod's container.
pub fn logs(g: &Globals, a: LogsArgs) -> Result<ExitCode> {
    let pod = match a.target.split_once('/') {
        Some((k, name)) if std::ptr::eq(kind(k)?, &kinds::POD) => Some(name.to_string()),
        Some((k, _)) => bail!("logs of {k}: name a pod (pod/NAME) or a container"),
        None if a.container.is_some() || a.conn.namespace.is_some() => Some(a.target.clone()),
        None if crate::containers::open(g)?.lookup(&a.target).is_ok() => None,
        None => Some(a.target.clone()),
    };
    let Some(pod) = pod else {
        return crate::containers::logs(
            g,
            crate::containers::LogsArgs {
                follow: a.follow,
                tail: a.tail,
                timestamps: a.timestamps,
                since: a.since,
                container: a.target,
            },
        );
    };
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .with_context(|| format!("--tail {n:?}: expected a number or \"all\""))?,
        ),
    };
    if a.since.is_some() {
        bail!("--since works for berth containers, not for pods");
    }
    pod_logs(
        g,
        &a.conn,
        &pod,
        a.container.as_deref(),
        a.follow,
        a.timestamps,
        tail,
    )
}

/// Prints the log of container `container` (or the only one) of pod `pod`.
fn pod_logs(
    g: &Globals,
    conn: &Conn,
    pod: &str,
    container: Option<&str>,
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
) -> Result<ExitCode> {
    let client = conn.client(g)?;
    let mut q = Vec::new();
    if let Some(c) = container {
        q.push(format!("container={}", encode(c)));
    }
    if follow {
        q.push("follow=true".into());
    }
    if timestamps {
        q.push("timestamps=true".into());
    }
    if let Some(n) = tail {
        q.push(format!("tailLines={n}"));
    }
    let path = format!(
        "{}/log?{}",
        kinds::POD.object_path(conn.ns(), pod),
        q.join("&")
    );
    let mut out = std::io::stdout().lock();
    let mut write_failed = false;
    client.stream(&path, "text/plain", &mut |chunk| {
        write_failed = out.write_all(chunk).and_then(|()| out.flush()).is_err();
        !write_failed
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `berth scale`.
#[derive(Args)]
pub struct ScaleArgs {
    /// deploy/NAME or rs/NAME (or TYPE NAME).
    #[arg(required = true)]
    args: Vec<String>,
    /// The number of replicas wanted.
    #[arg(long)]
    replicas: u32,
    #[command(flatten)]
    conn: Conn,
}

/// Sets the replicas of Deployments or ReplicaSets through their `scale` subresource.
pub fn scale(g: &Globals, a: ScaleArgs) -> Result<ExitCode> {
    let (kind, names) = kind_and_names(&a.args)?;
    if !kind.has_scale {
        bail!(
            "{} cannot be scaled (deployments and replicasets can)",
            kind.plural
        );
    }
    let client = a.conn.client(g)?;
    for name in names {
        client.json(
            "PATCH",
            &format!("{}/scale", kind.object_path(a.conn.ns(), &name)),
            Some("application/merge-patch+json"),
            Some(&json!({"spec": {"replicas": a.replicas}})),
        )?;
        println!("{}/{name} scaled", kind.display_name());
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth rollout`.
#[derive(Args)]
pub struct RolloutArgs {
    /// status, history or undo.
    action: String,
    /// deploy/NAME (or deploy NAME).
    #[arg(required = true)]
    args: Vec<String>,
    /// For undo: the revision to go back to (default: the one before the current).
    #[arg(long, default_value_t = 0)]
    to_revision: i64,
    /// For status: give up after this many seconds (0: wait forever).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    #[command(flatten)]
    conn: Conn,
}

/// `rollout status|history|undo` of a Deployment.
pub fn rollout(g: &Globals, a: RolloutArgs) -> Result<ExitCode> {
    let (kind, names) = kind_and_names(&a.args)?;
    if !std::ptr::eq(kind, &kinds::DEPLOYMENT) {
        bail!("rollout works on deployments, not {}", kind.plural);
    }
    let [name] = names.as_slice() else {
        bail!("name one deployment: deploy/NAME");
    };
    let client = a.conn.client(g)?;
    let path = kind.object_path(a.conn.ns(), name);
    match a.action.as_str() {
        "status" => {
            let start = Instant::now();
            let mut last = String::new();
            loop {
                let d = client.json("GET", &path, None, None)?;
                let (done, msg) = rollout_state(&d, name);
                if msg != last {
                    println!("{msg}");
                    last = msg;
                }
                if done {
                    return Ok(ExitCode::SUCCESS);
                }
                if a.timeout > 0 && start.elapsed() > Duration::from_secs(a.timeout) {
                    bail!("timed out waiting for the condition");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        "history" => {
            let d = client.json("GET", &path, None, None)?;
            println!("{}/{name}", kind.display_name());
            println!("REVISION  CHANGE-CAUSE");
            for (rev, rs) in revisions(&client, &d, a.conn.ns())? {
                let cause = rs["metadata"]["annotations"]["kubernetes.io/change-cause"]
                    .as_str()
                    .unwrap_or("<none>");
                println!("{rev:<10}{cause}");
            }
            println!();
            Ok(ExitCode::SUCCESS)
        }
        "undo" => {
            let d = client.json("GET", &path, None, None)?;
            let revs = revisions(&client, &d, a.conn.ns())?;
            let current = revs.last().map(|(r, _)| *r).unwrap_or(0);
            let wanted = if a.to_revision > 0 {
                a.to_revision
            } else {
                revs.iter()
                    .rev()
                    .map(|(r, _)| *r)
                    .find(|r| *r < current)
                    .context("no rollout history found")?
            };
            let (_, rs) = revs.iter().find(|(r, _)| *r == wanted).with_context(|| {
                format!("unable to find specified revision {wanted} in history")
            })?;
            let mut template = rs["spec"]["template"].clone();
            if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
                labels.remove("pod-template-hash");
            }
            if template == d["spec"]["template"] {
                println!("{}/{name} skipped rollback (current template already matches revision {wanted})", kind.display_name());
                return Ok(ExitCode::SUCCESS);
            }
            client.json(
                "PATCH",
                &path,
                Some("application/json-patch+json"),
                Some(&json!([{"op": "replace", "path": "/spec/template", "value": template}])),
            )?;
            println!("{}/{name} rolled back", kind.display_name());
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("rollout {other}: expected status, history or undo"),
    }
}

/// Whether a Deployment's rollout is complete, and kubectl's words for where it is.
fn rollout_state(d: &Value, name: &str) -> (bool, String) {
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let status = &d["status"];
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = status["updatedReplicas"].as_i64().unwrap_or(0);
    let replicas = status["replicas"].as_i64().unwrap_or(0);
    let available = status["availableReplicas"].as_i64().unwrap_or(0);
    if observed < generation {
        return (
            false,
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    if updated < want {
        return (false, format!("Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated..."));
    }
    if replicas > updated {
        return (false, format!("Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...", replicas - updated));
    }
    if available < updated {
        return (false, format!("Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."));
    }
    (true, format!("deployment {name:?} successfully rolled out"))
}

/// The ReplicaSets a Deployment controls, by their revision annotation, oldest first.
fn revisions(client: &Client, d: &Value, ns: &str) -> Result<Vec<(i64, Value)>> {
    let uid = d["metadata"]["uid"].as_str().unwrap_or_default();
    let selector = berth_apiserver::label_selector(&d["spec"]["selector"]);
    let path = format!(
        "{}?labelSelector={}",
        kinds::REPLICA_SET.collection_path(Some(ns)),
        encode(&selector)
    );
    let list = client.json("GET", &path, None, None)?;
    let mut out: Vec<(i64, Value)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"].as_str() == Some(uid) && r["controller"] == json!(true))
                })
        })
        .filter_map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .map(|r| (r, rs.clone()))
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    Ok(out)
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        let (k, n) = kind_and_names(&["deploy/web".into()]).unwrap();
        assert!(std::ptr::eq(k, &kinds::DEPLOYMENT));
        assert_eq!(n, ["web"]);
        let (k, n) = kind_and_names(&["cm".into(), "a".into(), "b".into()]).unwrap();
        assert!(std::ptr::eq(k, &kinds::CONFIG_MAP));
        assert_eq!(n, ["a", "b"]);
        assert!(kind_and_names(&["nope".into()]).is_err());
        assert!(kind_and_names(&["po/a".into(), "svc/b".into()]).is_err());
    }

    #[test]
    fn rollout_progress_reads_like_kubectl() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                       "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 1}});
        let (done, msg) = rollout_state(&d, "web");
        assert!(!done);
        assert!(
            msg.contains("1 of 3 updated replicas are available"),
            "{msg}"
        );
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                       "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}});
        assert!(rollout_state(&d, "web").0);
    }
}
