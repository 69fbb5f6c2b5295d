//! Address management: hands out the addresses of one subnet to containers, one owner per
//! address, persisted under the network's state dir so it survives restarts of every berth
//! process. A file lock serialises all changes; the same lock guards the rest of an attach.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use super::subnet::Ipv4Subnet;

/// Errors from address management.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The state dir, its lock or its state file could not be read or written.
    #[error("ipam state {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("ipam state {path}: corrupt: {source}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Addresses are recorded for another subnet.
    #[error("ipam state {path}: addresses are allocated from {recorded}, not {configured}")]
    SubnetChanged {
        /// The state file.
        path: PathBuf,
        /// The subnet in the state file.
        recorded: String,
        /// The subnet configured now.
        configured: Ipv4Subnet,
    },
    /// Every assignable address is taken.
    #[error("subnet {0}: no free address left")]
    Exhausted(Ipv4Subnet),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    subnet: String,
    /// The address handed out most recently: the search for a free one starts after it,
    /// so a released address is not reused at once (stale ARP and conntrack entries).
    last: Option<Ipv4Addr>,
    allocations: BTreeMap<Ipv4Addr, String>,
}

/// The address allocator of one subnet, with its state in `dir`.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Ipv4Subnet,
}

/// The allocator's state, held under its exclusive lock until dropped.
#[derive(Debug)]
pub struct IpamLock {
    path: PathBuf,
    subnet: Ipv4Subnet,
    state: State,
    _lock: File,
}

impl Ipam {
    /// An allocator for `subnet` keeping its state in `dir` (created when first locked).
    pub fn new(dir: &Path, subnet: Ipv4Subnet) -> Self {
        Ipam {
            dir: dir.to_path_buf(),
            subnet,
        }
    }

    /// Takes the exclusive lock (waiting for other processes) and loads the state.
    pub fn lock(&self) -> Result<IpamLock, IpamError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IpamError::Io { path, source }
        };
        berth_image::perms::private_dir(&self.dir).map_err(io(&self.dir))?;
        let lock_path = self.dir.join("ipam.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock_exclusive().map_err(io(&lock_path))?;
        let path = self.dir.join("ipam.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<State>(&bytes).map_err(|source| IpamError::Corrupt {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                subnet: self.subnet.to_string(),
                ..State::default()
            },
            Err(source) => return Err(IpamError::Io { path, source }),
        };
        if state.subnet != self.subnet.to_string() && !state.allocations.is_empty() {
            return Err(IpamError::SubnetChanged {
                path,
                recorded: state.subnet,
                configured: self.subnet,
            });
        }
        Ok(IpamLock {
            path,
            subnet: self.subnet,
            state,
            _lock: lock,
        })
    }
}

impl IpamLock {
    /// The address held by `owner`, if any.
    pub fn address_of(&self, owner: &str) -> Option<Ipv4Addr> {
        self.state
            .allocations
            .iter()
            .find(|(_, o)| o.as_str() == owner)
            .map(|(a, _)| *a)
    }

    /// Every allocation, address to owner.
    pub fn allocations(&self) -> &BTreeMap<Ipv4Addr, String> {
        &self.state.allocations
    }

    /// Gives `owner` a free address (its existing one if it has one) and saves the state.
    pub fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        if let Some(addr) = self.address_of(owner) {
            return Ok(addr);
        }
        let start = self.state.last.filter(|a| self.subnet.contains(*a));
        let after = self
            .subnet
            .assignable()
            .skip_while(|a| start.is_some_and(|s| *a <= s));
        let before = self.subnet.assignable();
        let addr = after
            .chain(before)
            .find(|a| !self.state.allocations.contains_key(a))
            .ok_or(IpamError::Exhausted(self.subnet))?;
        self.state.allocations.insert(addr, owner.to_string());
        self.state.last = Some(addr);
        self.state.subnet = self.subnet.to_string();
        self.save()?;
        Ok(addr)
    }

    /// Frees the address held by `owner` and saves the state; returns it, if there was one.
    pub fn release(&mut self, owner: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let Some(addr) = self.address_of(owner) else {
            return Ok(None);
        };
        self.state.allocations.remove(&addr);
        self.save()?;
        Ok(Some(addr))
    }

    fn save(&self) -> Result<(), IpamError> {
        let tmp = self.path.with_extension("json.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IpamError::Io { path, source }
        };
        let bytes =
            serde_json::to_vec_pretty(&self.state).map_err(|source| IpamError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_distinct_addresses_and_is_idempotent_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), subnet("10.88.0.0/24"));
        let mut lock = ipam.lock().unwrap();
        let a = lock.allocate("a").unwrap();
        let b = lock.allocate("b").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(lock.allocate("a").unwrap(), a);
    }

    #[test]
    fn survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = {
            let ipam = Ipam::new(dir.path(), subnet("10.88.0.0/24"));
            let mut lock = ipam.lock().unwrap();
            lock.allocate("a").unwrap()
        };
        let ipam = Ipam::new(dir.path(), subnet("10.88.0.0/24"));
        let mut lock = ipam.lock().unwrap();
        assert_eq!(lock.address_of("a"), Some(a));
        assert_ne!(lock.allocate("b").unwrap(), a);
    }

    #[test]
    fn release_frees_and_reuse_waits_for_wraparound() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), subnet("10.88.0.0/29"));
        let mut lock = ipam.lock().unwrap();
        // /29: .2 .. .6 assignable (5 addresses).
        let a = lock.allocate("a").unwrap();
        assert_eq!(lock.release("a").unwrap(), Some(a));
        assert_eq!(lock.release("a").unwrap(), None);
        let b = lock.allocate("b").unwrap();
        assert_ne!(a, b, "a just-released address is not handed out next");
        for owner in ["c", "d", "e", "f"] {
            lock.allocate(owner).unwrap();
        }
        let owners: HashSet<_> = lock.allocations().keys().collect();
        assert_eq!(owners.len(), 5);
        assert!(matches!(lock.allocate("g"), Err(IpamError::Exhausted(_))));
    }

    #[test]
    fn concurrent_allocations_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let net = subnet("10.88.0.0/24");
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|i| {
                            let ipam = Ipam::new(&dir, net);
                            let mut lock = ipam.lock().unwrap();
                            lock.allocate(&format!("t{t}-{i}")).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for addr in h.join().unwrap() {
                assert!(seen.insert(addr), "{addr} handed out twice");
            }
        }
        assert_eq!(seen.len(), 80);
    }

    #[test]
    fn refuses_a_changed_subnet_while_addresses_are_in_use() {
        let dir = tempfile::tempdir().unwrap();
        Ipam::new(dir.path(), subnet("10.88.0.0/24"))
            .lock()
            .unwrap()
            .allocate("a")
            .unwrap();
        let err = Ipam::new(dir.path(), subnet("10.88.1.0/24"))
            .lock()
            .unwrap_err();
        assert!(matches!(err, IpamError::SubnetChanged { .. }), "{err}");
    }
}
