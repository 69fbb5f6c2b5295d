//! `berth inspect` of a container: Docker's JSON shape (`Id`, `State`, `HostConfig`,
//! `Config`, `NetworkSettings`, `Mounts`, ...) filled from what berth records: the container's
//! [`ContainerConfig`], its [`State`], its OCI bundle (environment, working directory, host
//! name as the process got them), its network attachment and its image's labels.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use berth_image::manifest::PlatformSpec;
use berth_image::store::Store;

use super::restart::RestartPolicy;
use super::state::{State, Status};
use super::{ContainerConfig, ContainerError, Containers};
use crate::network::{Attachment, PortMapping};

/// Docker's zero time, shown for times that have not happened yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Container `config`'s inspect document.
pub fn inspect(c: &Containers, config: &ContainerConfig) -> Result<Value, ContainerError> {
    let state = c.state(&config.id)?;
    let dir = c.dir(&config.id);
    let process = bundle_process(&dir.join("bundle/config.json"));
    let attachment = match (&config.attached_network, state.status) {
        (Some(_), Status::Running | Status::Created) => {
            c.network_of(config)?.attachment(&config.id).ok().flatten()
        }
        _ => None,
    };
    let running = state.is_running();
    let (env, cwd, hostname) = process;
    let mut doc = Map::new();
    doc.insert("Id".into(), json!(config.id));
    doc.insert("Created".into(), json!(config.created));
    doc.insert("Path".into(), json!(config.args.first()));
    doc.insert("Args".into(), json!(config.args.get(1..).unwrap_or(&[])));
    doc.insert("State".into(), state_doc(&state, running));
    doc.insert("Image".into(), json!(config.image_id));
    doc.insert(
        "ResolvConfPath".into(),
        json!(etc_path(&dir, "resolv.conf")),
    );
    doc.insert("HostnamePath".into(), json!(etc_path(&dir, "hostname")));
    doc.insert("HostsPath".into(), json!(etc_path(&dir, "hosts")));
    doc.insert(
        "LogPath".into(),
        json!(c.log_path(&config.id).to_string_lossy()),
    );
    doc.insert("Name".into(), json!(format!("/{}", config.name)));
    doc.insert("Pod".into(), json!(config.pod.clone().unwrap_or_default()));
    doc.insert("RestartCount".into(), json!(state.restart_count));
    doc.insert("Driver".into(), json!("overlay"));
    doc.insert("Platform".into(), json!("linux"));
    doc.insert("HostConfig".into(), host_config(config));
    doc.insert("Mounts".into(), json!(config.mounts));
    doc.insert(
        "Config".into(),
        json!({
            "Hostname": hostname,
            "User": config.user,
            "ExposedPorts": config.exposed_ports.iter()
                .map(|k| (k.clone(), json!({})))
                .collect::<Map<String, Value>>(),
            "Tty": config.monitor.tty,
            "OpenStdin": config.monitor.open_stdin,
            "Env": env,
            "Cmd": config.cmd(),
            "Image": config.image,
            "WorkingDir": cwd,
            "Entrypoint": (!config.entrypoint.is_empty()).then_some(&config.entrypoint),
            "Labels": labels(c.root(), config),
        }),
    );
    let mac = running
        .then(|| mac_address(state.pid))
        .flatten()
        .unwrap_or_default();
    doc.insert(
        "NetworkSettings".into(),
        network_settings(config, attachment.as_ref(), &mac),
    );
    Ok(Value::Object(doc))
}

fn state_doc(state: &State, running: bool) -> Value {
    let status = match state.status {
        Status::Created => "created",
        Status::Running if running => "running",
        Status::Restarting if running => "restarting",
        Status::Running | Status::Restarting | Status::Exited => "exited",
    };
    let mut doc = json!({
        "Status": status,
        "Running": running && state.status == Status::Running,
        "Paused": false,
        "Restarting": running && state.status == Status::Restarting,
        "OOMKilled": false,
        "Dead": false,
        "Pid": if running { state.pid.unwrap_or(0) } else { 0 },
        "ExitCode": state.exit_code.unwrap_or(0),
        "Error": state.error.clone().unwrap_or_default(),
        "StartedAt": state.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "FinishedAt": state.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
    });
    if let Some(health) = &state.health {
        doc["Health"] = json!(health);
    }
    doc
}

fn host_config(config: &ContainerConfig) -> Value {
    let binds: Vec<String> = config
        .mounts
        .iter()
        .filter(|m| m.typ == "bind" || m.name.is_some())
        .map(|m| {
            let src = m
                .name
                .clone()
                .unwrap_or_else(|| m.source.to_string_lossy().into_owned());
            let ro = if m.rw { "" } else { ":ro" };
            format!("{src}:{}{ro}", m.destination)
        })
        .collect();
    let r = &config.resources;
    let sec = &config.security;
    let nano_cpus = match (r.cpu_quota, r.cpu_period) {
        (Some(q), Some(p)) if p > 0 => q.saturating_mul(1_000_000_000) / p as i64,
        _ => 0,
    };
    json!({
        "NetworkMode": if config.network == "bridge" { "bridge".to_string() } else { config.network.clone() },
        "PortBindings": port_bindings(&config.ports),
        "PublishAllPorts": config.publish_all,
        "Binds": (!binds.is_empty()).then_some(binds),
        "AutoRemove": config.auto_remove,
        "RestartPolicy": restart_policy(config.monitor.restart),
        "Memory": r.memory.unwrap_or(0),
        "NanoCpus": nano_cpus,
        "PidsLimit": r.pids_limit,
        "Privileged": sec.privileged,
        "CapAdd": (!sec.cap_add.is_empty()).then_some(&sec.cap_add),
        "CapDrop": (!sec.cap_drop.is_empty()).then_some(&sec.cap_drop),
        "SecurityOpt": (!sec.security_opt.is_empty()).then_some(&sec.security_opt),
        "ReadonlyRootfs": sec.read_only,
        "PidMode": if sec.host_pid { "host" } else { "" },
        "IpcMode": if sec.host_ipc { "host" } else { "private" },
    })
}

/// `HostConfig.RestartPolicy`: Docker's name and retry count.
fn restart_policy(policy: RestartPolicy) -> Value {
    let (name, retries) = match policy {
        RestartPolicy::OnFailure { max_retries } => ("on-failure".to_string(), max_retries),
        other => (other.to_string(), 0),
    };
    json!({"Name": name, "MaximumRetryCount": retries})
}

/// `HostConfig.PortBindings`: what was asked for (`HostPort` "" when berth picked it).
fn port_bindings(ports: &[PortMapping]) -> Value {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in ports {
        map.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_default()
            .push(json!({
                "HostIp": p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "HostPort": p.host_port.to_string(),
            }));
    }
    json!(map)
}

/// `NetworkSettings.Ports`: every exposed port, with its host bindings (null when not
/// published), as Docker shows a running container's.
pub fn port_map(config: &ContainerConfig) -> BTreeMap<String, Option<Vec<(String, u16)>>> {
    let mut map: BTreeMap<String, Option<Vec<(String, u16)>>> = config
        .exposed_ports
        .iter()
        .map(|k| (k.clone(), None))
        .collect();
    for p in &config.ports {
        let ip = p
            .host_ip
            .map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
        map.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push((ip, p.host_port));
    }
    map
}

fn network_settings(config: &ContainerConfig, attachment: Option<&Attachment>, mac: &str) -> Value {
    let ports: Map<String, Value> = port_map(config)
        .into_iter()
        .map(|(k, v)| {
            let v = v.map_or(Value::Null, |bindings| {
                bindings
                    .into_iter()
                    .map(|(ip, port)| json!({"HostIp": ip, "HostPort": port.to_string()}))
                    .collect()
            });
            (k, v)
        })
        .collect();
    let (ip, gateway, prefix) = attachment.map_or((String::new(), String::new(), 0), |a| {
        (a.ip.to_string(), a.gateway.to_string(), a.prefix)
    });
    let mut networks = Map::new();
    if config.network_mode().attaches() {
        networks.insert(
            "bridge".into(),
            json!({
                "NetworkID": config.attached_network.as_ref().map(|n| n.bridge.clone()).unwrap_or_default(),
                "EndpointID": attachment.map(|a| a.veth.clone()).unwrap_or_default(),
                "Gateway": gateway,
                "IPAddress": ip,
                "IPPrefixLen": prefix,
                "MacAddress": mac,
            }),
        );
    } else {
        networks.insert(config.network.clone(), json!({}));
    }
    json!({
        "SandboxKey": config.netns.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
        "Ports": ports,
        "Gateway": gateway,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "MacAddress": mac,
        "Networks": networks,
    })
}

/// The process's environment, working directory and host name from the OCI bundle (what
/// the container actually got); empty when the bundle is gone.
fn bundle_process(path: &Path) -> (Vec<String>, String, String) {
    let spec: Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let env = spec["process"]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cwd = spec["process"]["cwd"].as_str().unwrap_or("").to_string();
    let hostname = spec["hostname"].as_str().unwrap_or("").to_string();
    (env, cwd, hostname)
}

fn etc_path(dir: &Path, name: &str) -> String {
    dir.join("etc").join(name).to_string_lossy().into_owned()
}

/// The container's labels over its image's (`--label` wins, as in Docker).
fn labels(root: &Path, config: &ContainerConfig) -> BTreeMap<String, String> {
    let mut labels = image_labels(root, &config.image_id);
    labels.extend(config.labels.clone());
    labels
}

/// The labels of image `image_id`, when it is still in the store.
fn image_labels(root: &Path, image_id: &str) -> BTreeMap<String, String> {
    let labels = Store::open(root)
        .ok()
        .and_then(|store| {
            let image = store.resolve(image_id, &PlatformSpec::host()).ok()?;
            image.config.config().as_ref()?.labels().clone()
        })
        .unwrap_or_default();
    labels.into_iter().collect()
}

/// The MAC address of the container's `eth0`, read through its root (its sysfs shows its
/// own network namespace).
fn mac_address(pid: Option<i32>) -> Option<String> {
    let pid = pid?;
    std::fs::read_to_string(format!("/proc/{pid}/root/sys/class/net/eth0/address"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_show_bindings_and_unpublished_exposed_ports() {
        let doc = network_settings(&super::super::sample_config(), None, "");
        assert_eq!(
            doc["Ports"]["8000/tcp"],
            json!([{"HostIp": "0.0.0.0", "HostPort": "8100"}])
        );
        assert_eq!(doc["Ports"]["53/udp"], Value::Null);
        let host = host_config(&super::super::sample_config());
        assert_eq!(
            host["PortBindings"]["8000/tcp"],
            json!([{"HostIp": "", "HostPort": "8100"}])
        );
        assert_eq!(host["Privileged"], false);
        assert_eq!(host["CapAdd"], Value::Null);
        let mut config = super::super::sample_config();
        config.security.cap_drop = vec!["CAP_CHOWN".into()];
        config.security.read_only = true;
        config.security.security_opt = vec!["no-new-privileges".into()];
        let host = host_config(&config);
        assert_eq!(host["CapDrop"], json!(["CAP_CHOWN"]));
        assert_eq!(host["ReadonlyRootfs"], true);
        assert_eq!(host["SecurityOpt"], json!(["no-new-privileges"]));
    }

    #[test]
    fn cmd_is_what_follows_the_entrypoint() {
        assert_eq!(super::super::sample_config().cmd(), ["httpd", "-f"]);
    }

    #[test]
    fn state_shows_docker_words_and_zero_times() {
        let mut s = State::created();
        let doc = state_doc(&s, false);
        assert_eq!(doc["Status"], "created");
        assert_eq!(doc["StartedAt"], ZERO_TIME);
        s.status = Status::Exited;
        s.exit_code = Some(137);
        let doc = state_doc(&s, false);
        assert_eq!(doc["Status"], "exited");
        assert_eq!(doc["ExitCode"], 137);
        assert_eq!(doc["Running"], false);
    }
}
