//! The image config a stage builds up: the base image's config, changed by each
//! metadata instruction (ENV, CMD, LABEL, ...) as Docker records them, plus history.

use serde_json::{json, Map, Value};

use crate::dockerfile::{Command, HealthcheckCmd, Instruction};

pub use berth_runtime::spec::DEFAULT_PATH;

/// A stage's image config under construction.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The whole config document (`architecture`, `os`, `config`, `history`, ...).
    pub doc: Value,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

impl ImageConfig {
    /// Starts from a base image's config document (its `history` and `rootfs` kept).
    pub fn from_base(mut doc: Value) -> Self {
        obj(&mut doc);
        obj(&mut doc["config"]);
        Self {
            doc,
            cmd_set: false,
        }
    }

    /// The config of `FROM scratch` for `os/arch`.
    pub fn scratch(os: &str, arch: &str) -> Self {
        Self::from_base(json!({
            "architecture": arch,
            "os": os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }))
    }

    /// A stage built FROM this one: CMD counts as inherited again.
    pub fn inherit(&self) -> Self {
        Self {
            doc: self.doc.clone(),
            cmd_set: false,
        }
    }

    fn config(&mut self) -> &mut Map<String, Value> {
        obj(&mut self.doc["config"])
    }

    /// `config.Env` as `(name, value)` pairs in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.doc["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (s.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets one variable, replacing an earlier value in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
        let list: Vec<Value> = env.iter().map(|(k, v)| json!(format!("{k}={v}"))).collect();
        self.config().insert("Env".into(), Value::Array(list));
    }

    /// Adds Docker's default PATH when the environment has none (BuildKit does this for
    /// every stage so bare command names resolve).
    pub fn ensure_path(&mut self) {
        if !self.env().iter().any(|(k, _)| k == "PATH") {
            self.set_env("PATH", DEFAULT_PATH);
        }
    }

    /// `config.WorkingDir`, `/` when unset.
    pub fn workdir(&self) -> String {
        match self.doc["config"]["WorkingDir"].as_str() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".into(),
        }
    }

    /// `config.User`.
    pub fn user(&self) -> String {
        self.doc["config"]["User"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `config.Shell`, or `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        match self.doc["config"]["Shell"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    /// The argv a command runs as: exec form as is, shell form through the shell.
    pub fn argv(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// Records a metadata instruction (after expansion) in the config. `workdir` is the
    /// stage's working directory after the step.
    pub fn apply(&mut self, inst: &Instruction, workdir: &str) {
        match inst {
            Instruction::Env { vars, .. } => {
                for kv in vars {
                    self.set_env(&kv.key, &kv.value);
                }
            }
            Instruction::Cmd { command, .. } => {
                let argv = self.argv(command);
                self.config().insert("Cmd".into(), json!(argv));
                self.cmd_set = true;
            }
            Instruction::Entrypoint { command, .. } => {
                let argv = self.argv(command);
                self.config().insert("Entrypoint".into(), json!(argv));
                if !self.cmd_set {
                    self.config().remove("Cmd");
                }
            }
            Instruction::Label { labels, .. } => {
                let map = obj(self.config().entry("Labels").or_insert(json!({})));
                for kv in labels {
                    map.insert(kv.key.clone(), json!(kv.value));
                }
            }
            Instruction::Expose { ports, .. } => {
                let map = obj(self.config().entry("ExposedPorts").or_insert(json!({})));
                for p in ports {
                    for port in expand_ports(p) {
                        map.insert(port, json!({}));
                    }
                }
            }
            Instruction::Volume { paths, .. } => {
                let map = obj(self.config().entry("Volumes").or_insert(json!({})));
                for p in paths {
                    map.insert(p.clone(), json!({}));
                }
            }
            Instruction::User { user, .. } => {
                self.config().insert("User".into(), json!(user));
            }
            Instruction::Workdir { .. } => {
                self.config().insert("WorkingDir".into(), json!(workdir));
            }
            Instruction::Shell { shell, .. } => {
                self.config().insert("Shell".into(), json!(shell));
            }
            Instruction::Stopsignal { signal, .. } => {
                self.config().insert("StopSignal".into(), json!(signal));
            }
            Instruction::Healthcheck { check, .. } => {
                let value = healthcheck(check.as_ref());
                self.config().insert("Healthcheck".into(), value);
            }
            Instruction::Onbuild { expression, .. } => {
                let list = self.config().entry("OnBuild").or_insert(json!([]));
                if let Value::Array(a) = list {
                    a.push(json!(expression));
                } else {
                    *list = json!([expression]);
                }
            }
            Instruction::Maintainer { name, .. } => {
                obj(&mut self.doc).insert("author".into(), json!(name));
            }
            _ => {}
        }
    }

    /// Appends a history entry.
    pub fn history(&mut self, created: &str, created_by: &str, empty_layer: bool) {
        let mut entry = json!({"created": created, "created_by": created_by, "comment": "buildkit.dockerfile.v0"});
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        let list = obj(&mut self.doc).entry("history").or_insert(json!([]));
        if let Value::Array(a) = list {
            a.push(entry);
        } else {
            *list = json!([entry]);
        }
    }

    /// Sets `created` and drops the base's ONBUILD triggers (they ran, or are not ours).
    pub fn finish(&mut self, created: &str) {
        obj(&mut self.doc).insert("created".into(), json!(created));
    }

    /// Clears inherited ONBUILD triggers at the start of a stage (Docker runs them; berth
    /// records none it did not see written).
    pub fn clear_onbuild(&mut self) {
        self.config().remove("OnBuild");
    }
}

fn healthcheck(check: Option<&HealthcheckCmd>) -> Value {
    let Some(c) = check else {
        return json!({"Test": ["NONE"]});
    };
    let test: Vec<String> = match &c.command {
        Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
        Command::Exec(v) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
    };
    let mut h = json!({"Test": test});
    for (name, v) in [
        ("Interval", c.interval_ns),
        ("Timeout", c.timeout_ns),
        ("StartPeriod", c.start_period_ns),
        ("StartInterval", c.start_interval_ns),
    ] {
        if v > 0 {
            h[name] = json!(v);
        }
    }
    if c.retries > 0 {
        h["Retries"] = json!(c.retries);
    }
    h
}

/// `80`, `80/udp`, `8000-8002/tcp` as the `port/proto` keys Docker records.
fn expand_ports(spec: &str) -> Vec<String> {
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    match range.split_once('-') {
        Some((lo, hi)) => match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi)) => (lo..=hi).map(|p| format!("{p}/{proto}")).collect(),
            _ => vec![format!("{range}/{proto}")],
        },
        None => vec![format!("{range}/{proto}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{KeyValue, Span};

    #[test]
    fn env_replaces_in_place_and_entrypoint_resets_inherited_cmd() {
        let mut c =
            ImageConfig::from_base(json!({"config": {"Env": ["A=1", "B=2"], "Cmd": ["sh"]}}));
        let span = Span { line: 1, column: 1 };
        c.apply(
            &Instruction::Env {
                span,
                vars: vec![KeyValue {
                    key: "A".into(),
                    value: "3".into(),
                }],
            },
            "/",
        );
        assert_eq!(c.doc["config"]["Env"], json!(["A=3", "B=2"]));
        c.apply(
            &Instruction::Entrypoint {
                span,
                command: Command::Exec(vec!["/app".into()]),
            },
            "/",
        );
        assert!(c.doc["config"].get("Cmd").is_none());
        c.apply(
            &Instruction::Expose {
                span,
                ports: vec!["8000-8001/udp".into(), "80".into()],
            },
            "/",
        );
        assert_eq!(
            c.doc["config"]["ExposedPorts"],
            json!({"8000/udp": {}, "8001/udp": {}, "80/tcp": {}})
        );
    }
}
