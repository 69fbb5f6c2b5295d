//! Letting go of the pages of our own binary that start-up touched. A long-lived process
//! whose start-up runs much more code than its steady state (berth-monitor: parse the config,
//! spawn the create helper, then only a poll loop) keeps all of it resident, and the kernel's
//! fault-around maps up to 64 kB around each page touched. Unmapping the binary's clean,
//! read-only pages once start-up is done leaves resident only what later runs faults back in
//! from the page cache: nothing is lost, as those pages hold exactly the file's bytes.

use std::os::unix::fs::MetadataExt;

/// Why the start-up pages could not be released.
#[derive(Debug, thiserror::Error)]
pub enum ResidentError {
    /// Our own mappings could not be read.
    #[error("read /proc/self/smaps: {0}")]
    Smaps(std::io::Error),
    /// Our own binary could not be identified.
    #[error("stat /proc/self/exe: {0}")]
    Exe(std::io::Error),
    /// The kernel refused to drop a mapping's pages.
    #[error("madvise {start:#x}+{len:#x}: {source}")]
    Madvise {
        /// Start of the mapping.
        start: usize,
        /// Its length in bytes.
        len: usize,
        /// The kernel's error.
        source: std::io::Error,
    },
}

/// One mapping whose resident pages can be dropped.
#[derive(Debug, PartialEq, Eq)]
struct Region {
    start: usize,
    len: usize,
}

/// Drops this process's page-table entries for the read-only mappings of its own binary that
/// hold no private (copied-on-write) pages: code and constants, not the relocated RELRO part
/// or data. Returns the bytes of address space released.
pub fn release_image_pages() -> Result<usize, ResidentError> {
    let exe = std::fs::metadata("/proc/self/exe").map_err(ResidentError::Exe)?;
    let smaps = std::fs::read_to_string("/proc/self/smaps").map_err(ResidentError::Smaps)?;
    let dev = (
        nix::sys::stat::major(exe.dev()),
        nix::sys::stat::minor(exe.dev()),
    );
    let mut released = 0;
    for r in clean_image_regions(&smaps, dev, exe.ino()) {
        // SAFETY: the range is a whole private mapping of our executable file without write
        // permission and without anonymous (copied) pages, as smaps just listed it; nothing in
        // this process writes to such a mapping, so its pages are the file's bytes. Dropping
        // them changes no memory contents: each later access faults the same bytes back in.
        let rc = unsafe { libc::madvise(r.start as *mut libc::c_void, r.len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(ResidentError::Madvise {
                start: r.start,
                len: r.len,
                source: std::io::Error::last_os_error(),
            });
        }
        released += r.len;
    }
    Ok(released)
}

/// The mappings in `smaps` of the file `dev` (major, minor) / `ino` that are private, not
/// writable and have no anonymous pages.
fn clean_image_regions(smaps: &str, dev: (u64, u64), ino: u64) -> Vec<Region> {
    let mut regions = Vec::new();
    let mut current: Option<Region> = None;
    for line in smaps.lines() {
        if let Some(region) = image_mapping(line, dev, ino) {
            current = region;
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            let anonymous = kb.trim().trim_end_matches("kB").trim() != "0";
            if let Some(r) = current.take() {
                if !anonymous {
                    regions.push(r);
                }
            }
        }
    }
    regions
}

/// For a mapping header line of smaps: `Some(Some(region))` when it is a private read-only
/// mapping of the file, `Some(None)` for any other mapping, `None` for a field line.
fn image_mapping(line: &str, dev: (u64, u64), ino: u64) -> Option<Option<Region>> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let device = fields.next()?;
    let inode = fields.next()?.parse::<u64>().ok()?;
    let (major, minor) = device.split_once(':')?;
    let same_file = u64::from_str_radix(major, 16).ok() == Some(dev.0)
        && u64::from_str_radix(minor, 16).ok() == Some(dev.1)
        && inode == ino;
    let read_only_private = perms.len() == 4 && !perms.contains('w') && perms.ends_with('p');
    Some(
        (same_file && read_only_private && end > start).then_some(Region {
            start,
            len: end - start,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
7f0000000000-7f0000003000 r--p 00000000 00:2f 77 /
Rss:                  12 kB
Anonymous:             0 kB
7f0000003000-7f00004aa000 r-xp 00003000 00:2f 77 /
Rss:                2396 kB
Anonymous:             0 kB
7f00004aa000-7f000064d000 r--p 004aa000 00:2f 77 /
Anonymous:             0 kB
7f000064d000-7f00006b4000 r--p 0064c000 00:2f 77 /
Anonymous:           412 kB
7f00006b4000-7f00006b8000 rw-p 006b3000 00:2f 77 /
Anonymous:            16 kB
7f0000700000-7f0000710000 r-xp 00000000 00:2f 78 /usr/lib/other.so
Anonymous:             0 kB
7f0000800000-7f0000810000 r--s 00000000 00:2f 77 /
Anonymous:             0 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:            48 kB
";

    #[test]
    fn code_and_constants_of_the_binary_are_released() {
        let got = clean_image_regions(SMAPS, (0, 0x2f), 77);
        assert_eq!(
            got,
            vec![
                Region {
                    start: 0x7f0000000000,
                    len: 0x3000
                },
                Region {
                    start: 0x7f0000003000,
                    len: 0x4a7000
                },
                Region {
                    start: 0x7f00004aa000,
                    len: 0x1a3000
                },
            ]
        );
    }

    #[test]
    fn relocated_or_writable_or_shared_or_other_files_are_kept() {
        let got = clean_image_regions(SMAPS, (0, 0x2f), 77);
        assert!(
            got.iter().all(|r| r.start != 0x7f000064d000),
            "relro has copied pages"
        );
        assert!(
            got.iter().all(|r| r.start != 0x7f00006b4000),
            "data is writable"
        );
        assert!(
            got.iter().all(|r| r.start != 0x7f0000800000),
            "shared mapping"
        );
        assert!(clean_image_regions(SMAPS, (0, 0x2f), 78).len() == 1);
        assert!(clean_image_regions(SMAPS, (0, 0x30), 77).is_empty());
    }

    #[test]
    fn releasing_our_own_pages_keeps_the_process_working() {
        let released = release_image_pages().expect("release our code and constants");
        assert!(released > 0, "the test binary has clean read-only mappings");
        // The code just released runs again: it is faulted back from the file.
        let again = release_image_pages().expect("release them again");
        assert_eq!(released, again);
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
