use std::fs;
use std::os::unix::fs::symlink;

use super::*;

/// A root with `etc/passwd`, and a host directory beside it holding `secret`.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let outside = d.path().join("outside");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "inside").unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "host").unwrap();
    (d, root, outside)
}

fn read(root: &Root, path: &str) -> String {
    String::from_utf8(root.read(path).unwrap()).unwrap()
}

#[test]
fn absolute_and_dotdot_symlinks_are_rerooted() {
    let (_d, root, outside) = fixture();
    symlink(&outside, root.join("abs")).unwrap();
    symlink("../../../../../..", root.join("up")).unwrap();
    symlink("/etc", root.join("etclink")).unwrap();
    let r = Root::open(&root).unwrap();
    // The host directory is not reachable: the link means the root's own path.
    assert!(r.read("/abs/secret").unwrap_err().is_not_found());
    assert_eq!(read(&r, "/up/etc/passwd"), "inside");
    assert_eq!(read(&r, "/../../etc/passwd"), "inside");
    assert_eq!(read(&r, "etclink/passwd"), "inside");
    // Made through a link, a directory lands inside the root.
    r.mkdir_all("/abs/made").unwrap();
    assert!(root
        .join(outside.strip_prefix("/").unwrap())
        .join("made")
        .is_dir());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn beneath_refuses_what_in_root_reroots() {
    let (_d, root, outside) = fixture();
    symlink(&outside, root.join("abs")).unwrap();
    symlink("..", root.join("up")).unwrap();
    fs::create_dir(root.join("lib")).unwrap();
    symlink("lib", root.join("rel")).unwrap();
    let r = Root::open_beneath(&root).unwrap();
    assert!(matches!(
        r.parent_creating("abs/x"),
        Err(RootPathError::Escape { .. })
    ));
    assert!(matches!(
        r.parent("up/x"),
        Err(RootPathError::Escape { .. })
    ));
    // A relative link that stays inside is followed.
    let at = r.parent_creating("rel/x").unwrap();
    at.create(0o644).unwrap();
    assert!(root.join("lib/x").is_file());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn magic_links_are_refused() {
    let (_d, root, _outside) = fixture();
    symlink("/proc/self/root/etc", root.join("l")).unwrap();
    let r = Root::open(&root).unwrap();
    // Re-rooted: /proc/self/root is looked up inside the root, where it is missing.
    assert!(r.read("l/passwd").unwrap_err().is_not_found());
    // A real procfs inside the root (as a running container has) is refused.
    let host = Root::open("/").unwrap();
    assert!(matches!(
        host.read("/proc/self/root/etc/hostname"),
        Err(RootPathError::Loop { .. })
    ));
}

#[test]
fn last_component_is_not_followed_unless_asked() {
    let (_d, root, outside) = fixture();
    symlink(outside.join("secret"), root.join("etc/link")).unwrap();
    let r = Root::open(&root).unwrap();
    let st = r.stat("/etc/link", false).unwrap();
    assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::Symlink);
    assert!(r.stat("/etc/link", true).unwrap_err().is_not_found());
    let at = r.parent("/etc/link").unwrap();
    assert_eq!(at.name(), Some(OsStr::new("link")));
    assert!(at.open_read().is_err());
    assert!(at.create(0o644).is_err());
    // Replacing the link writes inside, the host file stays.
    at.remove(false).unwrap();
    let mut f = at.create(0o600).unwrap();
    io::Write::write_all(&mut f, b"new").unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/link")).unwrap(), "new");
    assert_eq!(fs::read_to_string(outside.join("secret")).unwrap(), "host");
    // Mode and owner changes on a symlink never reach its target.
    symlink(outside.join("secret"), root.join("etc/l2")).unwrap();
    let l2 = r.parent("/etc/l2").unwrap();
    l2.set_mode(0o777).unwrap();
    l2.set_mtime(1, 0).unwrap();
    let host_meta = fs::metadata(outside.join("secret")).unwrap();
    assert_ne!(
        std::os::unix::fs::PermissionsExt::mode(&host_meta.permissions()) & 0o777,
        0o777
    );
}

#[test]
fn dangling_links_are_followed_when_creating() {
    let (_d, root, _outside) = fixture();
    symlink("../run/resolve/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    symlink("/var/data", root.join("data")).unwrap();
    let r = Root::open(&root).unwrap();
    r.create_file("/etc/resolv.conf", 0o644).unwrap();
    assert!(root.join("run/resolve/resolv.conf").is_file());
    r.mkdir_all("/data/sub").unwrap();
    assert!(root.join("var/data/sub").is_dir());
    // Existing things are kept.
    r.create_file("/etc/passwd", 0o644).unwrap();
    assert_eq!(read(&r, "/etc/passwd"), "inside");
}

#[test]
fn loops_fail() {
    let (_d, root, _outside) = fixture();
    symlink("b", root.join("a")).unwrap();
    symlink("a", root.join("b")).unwrap();
    let r = Root::open(&root).unwrap();
    assert!(matches!(r.read("a/x"), Err(RootPathError::Loop { .. })));
    assert!(matches!(
        r.mkdir_all("a/x"),
        Err(RootPathError::Loop { .. })
    ));
}

#[test]
fn parent_of_root_and_dot_is_the_directory() {
    let (_d, root, _outside) = fixture();
    let r = Root::open(&root).unwrap();
    for p in ["/", "", "/etc/..", "."] {
        let at = r.parent(p).unwrap();
        assert_eq!(at.name(), None, "{p}");
        assert!(at.lstat().unwrap().is_some());
    }
    assert_eq!(
        entries(r.open_dir("/").unwrap().as_fd()).unwrap(),
        vec![OsString::from("etc")]
    );
}

#[test]
fn trees_are_removed_without_following_links() {
    let (_d, root, outside) = fixture();
    fs::create_dir_all(root.join("t/a/b")).unwrap();
    fs::write(root.join("t/a/b/f"), "x").unwrap();
    symlink(&outside, root.join("t/a/out")).unwrap();
    let r = Root::open(&root).unwrap();
    r.parent("/t").unwrap().remove(false).unwrap();
    assert!(!root.join("t").exists());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn only_empty_things_are_removed_and_links_are_not_followed() {
    let (_d, root, outside) = fixture();
    fs::create_dir(outside.join("empty")).unwrap();
    fs::create_dir(root.join("made")).unwrap();
    symlink(outside.join("empty"), root.join("made/link")).unwrap();
    fs::write(root.join("full"), "x").unwrap();
    let r = Root::open(&root).unwrap();
    // A symlink is left alone, and so is what it points at.
    assert!(r.parent("/made/link").unwrap().remove_if_empty().is_err());
    assert!(outside.join("empty").is_dir());
    assert!(r.parent("/made").unwrap().remove_if_empty().is_err());
    assert!(r.parent("/full").unwrap().remove_if_empty().is_err());
    fs::remove_file(root.join("made/link")).unwrap();
    r.parent("/made").unwrap().remove_if_empty().unwrap();
    assert!(!root.join("made").exists());
}
