//! Snapshots as root: a busybox image unpacked through the CLI with hard
//! links, owners and modes intact; layers with devices, owners, xattrs and
//! whiteouts in overlay form; an overlay rootfs and the copy fallback showing
//! the same tree; and an upper dir written back as a layer with whiteouts.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::digest::Digest;
use berth_image::snapshot::mount::MountKind;
use berth_image::snapshot::{diff, Compression, RootfsMount, Snapshots, UnpackOptions};
use berth_tests::{busybox_rootfs_tar, require_root, run_ok, TestRoot};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

#[test]
fn busybox_unpacks_with_links_owners_and_modes() {
    require_root();
    let t = TestRoot::new();
    run_ok(
        t.berth()
            .arg("import")
            .arg(busybox_rootfs_tar())
            .arg("busybox"),
    );
    let out = run_ok(t.berth().args(["snapshot", "unpack", "busybox"]));
    let chain: Digest = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // Unpacking again finds the snapshot and changes nothing.
    let again = run_ok(t.berth().args(["snapshot", "unpack", "busybox"]));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        chain.to_string()
    );
    let ls = run_ok(t.berth().args(["snapshot", "ls"]));
    assert!(String::from_utf8_lossy(&ls.stdout).contains(&chain.to_string()));

    let fs_dir = t.store().join("snapshots").join(chain.hex()).join("fs");
    let busybox = fs_dir.join("bin/busybox").symlink_metadata().unwrap();
    assert!(
        busybox.nlink() > 100,
        "applets are hard links: nlink {}",
        busybox.nlink()
    );
    assert_eq!(
        busybox.ino(),
        fs_dir.join("bin/sh").symlink_metadata().unwrap().ino()
    );
    assert_eq!((busybox.uid(), busybox.gid()), (0, 0));
    assert_eq!(
        fs_dir.join("tmp").symlink_metadata().unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        fs_dir.join("root").symlink_metadata().unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(busybox.mtime(), 0);
    run_ok(t.berth().args(["snapshot", "verify"]));
    run_ok(t.berth().args(["system", "check"]));

    // Tampering is found.
    fs::write(fs_dir.join("etc/passwd"), b"evil::0:0::/:/bin/sh\n").unwrap();
    let out = t.berth().args(["snapshot", "verify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("content changed"));
}

/// One tar entry for [`layer`].
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Owned(&'a str, u64, u64),
    Xattr(&'a str, &'a str, &'a [u8]),
    Dev(&'a str, u32, u32),
    Fifo(&'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mode(0o644);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (p, b"")
            }
            E::File(p, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                (p, d)
            }
            E::Owned(p, uid, gid) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_uid(*uid);
                h.set_gid(*gid);
                (p, b"")
            }
            E::Xattr(p, name, value) => {
                let key = format!("SCHILY.xattr.{name}");
                b.append_pax_extensions([(key.as_str(), *value)]).unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                (p, b"")
            }
            E::Dev(p, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                h.set_mode(0o666);
                (p, b"")
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                (p, b"")
            }
        };
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Every path below `dir` with its type and content, sorted.
fn view(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.is_dir() {
                "dir".to_string()
            } else if m.file_type().is_char_device() {
                format!("chr {}", m.rdev())
            } else if m.file_type().is_fifo() {
                "fifo".to_string()
            } else {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            };
            out.push(format!(
                "{rel} {what} {}:{} {:o}",
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            ));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn overlay_rootfs_whiteouts_and_layer_round_trip() {
    require_root();
    let t = TestRoot::new();
    let store = Snapshots::with_options(t.path("snapshots"), UnpackOptions::for_current_user());
    let base = layer(&[
        E::Dir("etc/"),
        E::File("etc/hostname", b"base\n"),
        E::File("etc/gone", b"to be deleted\n"),
        E::Dir("var/"),
        E::Dir("var/cache/"),
        E::File("var/cache/old", b"hidden by opaque\n"),
        E::Owned("home-file", 1000, 1001),
        E::Xattr("tagged", "user.berth", b"yes"),
        E::Dir("dev/"),
        E::Dev("dev/null", 1, 3),
        E::Fifo("pipe"),
    ]);
    let top = layer(&[
        E::Dir("etc/"),
        E::File("etc/.wh.gone", b""),
        E::Dir("var/cache/"),
        E::File("var/cache/.wh..wh..opq", b""),
        E::File("var/cache/new", b"fresh\n"),
        E::File("etc/hostname", b"top\n"),
    ]);
    let base_chain = store
        .unpack(None, &Digest::sha256_of(&base), TAR, &base[..])
        .unwrap();
    let top_chain = store
        .unpack(Some(&base_chain), &Digest::sha256_of(&top), TAR, &top[..])
        .unwrap();

    // Overlay form inside the snapshot.
    let top_fs = store.path(&top_chain);
    let wh = top_fs.join("etc/gone").symlink_metadata().unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 device"
    );
    assert!(!top_fs.join("etc/.wh.gone").exists());
    assert_eq!(
        xattr::get(top_fs.join("var/cache"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let base_fs = store.path(&base_chain);
    let owned = base_fs.join("home-file").symlink_metadata().unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1001));
    let null = base_fs.join("dev/null").symlink_metadata().unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(base_fs
        .join("pipe")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        xattr::get(base_fs.join("tagged"), "user.berth")
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );

    // The overlay and the copy fallback show the same tree.
    for d in ["upper", "work", "rootfs", "copy"] {
        fs::create_dir(t.path(d)).unwrap();
    }
    let rootfs = t.path("rootfs");
    let mount = store
        .mount_rootfs(Some(&top_chain), &t.path("upper"), &t.path("work"), &rootfs)
        .unwrap();
    assert_eq!(mount.kind(), MountKind::Overlay);
    let merged = view(&rootfs);
    let lowers = store.lowers(&top_chain).unwrap();
    let copy = RootfsMount::copy(&lowers, &t.path("copy"), true).unwrap();
    assert_eq!(view(&t.path("copy")), merged);
    copy.unmount().unwrap();
    assert!(
        merged.iter().any(|l| l.starts_with("etc/hostname top")),
        "{merged:?}"
    );
    assert!(
        !merged.iter().any(|l| l.starts_with("etc/gone")),
        "{merged:?}"
    );
    assert!(
        !merged.iter().any(|l| l.starts_with("var/cache/old")),
        "{merged:?}"
    );
    assert!(
        merged.iter().any(|l| l.starts_with("var/cache/new fresh")),
        "{merged:?}"
    );

    // Changes in the container become a layer with whiteouts.
    fs::remove_file(rootfs.join("etc/hostname")).unwrap();
    fs::remove_dir_all(rootfs.join("var")).unwrap();
    fs::create_dir(rootfs.join("var")).unwrap();
    fs::write(rootfs.join("added"), b"added\n").unwrap();
    mount.unmount().unwrap();
    let mut bytes = Vec::new();
    let info = diff::write_layer(&t.path("upper"), &mut bytes, Compression::Zstd, Some(0)).unwrap();
    let mut names = Vec::new();
    let tar_bytes = zstd::decode_all(&bytes[..]).unwrap();
    assert_eq!(Digest::sha256_of(&tar_bytes), info.diff_id);
    for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.contains(&"etc/.wh.hostname".to_string()), "{names:?}");
    assert!(names.contains(&"var/.wh..wh..opq".to_string()), "{names:?}");
    assert!(names.contains(&"added".to_string()), "{names:?}");

    // The new layer stacks on the image like any other.
    let third = store
        .unpack(Some(&top_chain), &info.diff_id, info.media_type, &bytes[..])
        .unwrap();
    fs::remove_dir_all(t.path("upper")).unwrap();
    fs::remove_dir_all(t.path("work")).unwrap();
    fs::create_dir(t.path("upper")).unwrap();
    fs::create_dir(t.path("work")).unwrap();
    let again = store
        .mount_rootfs(Some(&third), &t.path("upper"), &t.path("work"), &rootfs)
        .unwrap();
    let seen = view(&rootfs);
    drop(again);
    assert!(
        !seen.iter().any(|l| l.starts_with("etc/hostname")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.starts_with("added added")),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|l| l.starts_with("var/cache")), "{seen:?}");
    assert!(
        fs::read_dir(&rootfs).unwrap().next().is_none(),
        "rootfs still mounted"
    );
}
