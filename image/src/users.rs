//! `USER` and `--chown` values resolved against the image's `/etc/passwd` and
//! `/etc/group`, as Docker does when it starts a step's process or copies files.

use std::path::Path;

use crate::rootpath::Root;

/// Why a user or group could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A name with no entry in the image's passwd file.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A name with no entry in the image's group file.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// A resolved user: uid, primary gid and supplementary gids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups from `/etc/group` membership.
    pub additional_gids: Vec<u32>,
}

fn read_db(root: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(bytes) = Root::open(root).and_then(|r| r.read(file)) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

fn lookup_group(groups: &[Vec<String>], name: &str) -> Result<u32, UserError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    groups
        .iter()
        .find(|g| g.first().map(String::as_str) == Some(name))
        .and_then(|g| g.get(2)?.parse().ok())
        .ok_or_else(|| UserError::NoGroup(name.to_string()))
}

/// The process identity for `USER spec` (`user[:group]`, names or numbers) in the image
/// at `root`. A numeric user missing from passwd gets gid 0, as runc gives it.
pub fn process_user(root: &Path, spec: &str) -> Result<Ids, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Ok(Ids::default());
    }
    let passwd = read_db(root, "/etc/passwd");
    let entry = passwd.iter().find(|e| {
        e.first().map(String::as_str) == Some(user)
            || (user.parse::<u32>().is_ok() && e.get(2).map(String::as_str) == Some(user))
    });
    let (uid, primary, name) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (
            e.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
            e.get(3).and_then(|v| v.parse().ok()).unwrap_or(0),
            e.first().cloned(),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_string())),
    };
    let groups = read_db(root, "/etc/group");
    let gid = match group {
        Some(g) => lookup_group(&groups, g)?,
        None => primary,
    };
    let mut additional_gids = Vec::new();
    if group.is_none() {
        if let Some(name) = name {
            for g in &groups {
                let members = g.get(3).map(String::as_str).unwrap_or_default();
                if members.split(',').any(|m| m == name) {
                    if let Some(id) = g.get(2).and_then(|v| v.parse::<u32>().ok()) {
                        if id != gid && !additional_gids.contains(&id) {
                            additional_gids.push(id);
                        }
                    }
                }
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        additional_gids,
    })
}

/// The owner for `--chown=user[:group]`: a missing group defaults to the user's string
/// (resolved in `/etc/group`, or its number), as BuildKit does.
pub fn chown_ids(root: &Path, spec: &str) -> Result<(u32, u32), UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, spec),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => read_db(root, "/etc/passwd")
            .iter()
            .find(|e| e.first().map(String::as_str) == Some(user))
            .and_then(|e| e.get(2)?.parse().ok())
            .ok_or_else(|| UserError::NoUser(user.to_string()))?,
    };
    let gid = lookup_group(&read_db(root, "/etc/group"), group)?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app\nstaff:x:50:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_and_numbers() {
        let r = root();
        let app = process_user(r.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1001, vec![10])
        );
        assert_eq!(process_user(r.path(), "2000").unwrap().gid, 0);
        assert_eq!(process_user(r.path(), "app:staff").unwrap().gid, 50);
        assert!(process_user(r.path(), "nobody").is_err());
        assert_eq!(chown_ids(r.path(), "app:wheel").unwrap(), (1000, 10));
        assert_eq!(chown_ids(r.path(), "1234").unwrap(), (1234, 1234));
        assert_eq!(chown_ids(r.path(), "app").unwrap(), (1000, 1001));
    }
}
