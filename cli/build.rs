//! Link settings of the `berth-monitor` binary, one long-lived process per running container,
//! whose memory is what each container costs beside its own processes.
//!
//! It is linked as a static PIE (keeping ASLR): no dynamic loader, no shared-library mappings
//! (libc alone pages in ~1.4 MB of a shared mapping), and the only start-up relocations are its
//! own, packed (DT_RELR) so they are a small bitmap rather than ~0.5 MB of `.rela.dyn`. The
//! monitor looks up no users or hosts through NSS (users are resolved from the image's files by
//! berth itself), so static glibc serves it; GNU ld's warnings about `getpwuid_r` and
//! `getaddrinfo` come from library code on paths the monitor does not take.
//!
//! rustc names std's C libraries (`-lgcc_s -lc -lm ...`, and `-lseccomp`) after `-Bdynamic`, in
//! arguments that cannot be changed for one binary, and the libseccomp crate puts the system
//! library directory ahead of any other search path. So the monitor's link goes through a small
//! wrapper (`ld.bfd` in a `-B` directory, chosen with `-fuse-ld=bfd`) that turns `-Bdynamic`
//! into `-Bstatic` and runs GNU ld; `libgcc_s`, which has no archive, stands for the static
//! unwinder and compiler runtime (`libgcc_eh.a`, `libgcc.a`). Where that cannot be set up, the
//! monitor is linked dynamically as before (with a build warning).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The linker GNU ld that the wrapper runs.
const GNU_LD: &str = "/usr/bin/ld.bfd";

/// The wrapper: every `-Bdynamic` becomes `-Bstatic`, everything else passes unchanged.
const WRAPPER: &str = "#!/bin/sh
# berth-monitor's linker (cli/build.rs): every library linked statically.
for arg; do
    shift
    [ \"$arg\" = -Bdynamic ] && arg=-Bstatic
    set -- \"$@\" \"$arg\"
done
exec LD \"$@\"
";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bin=berth-monitor=-Wl,-z,pack-relative-relocs");
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        println!("cargo:warning=OUT_DIR unset: berth-monitor is linked dynamically");
        return;
    };
    let dir = Path::new(&out_dir).join("monitor-static-link");
    match link_dir(&dir) {
        Ok(()) => {
            for arg in [
                format!("-B{}", dir.display()),
                "-fuse-ld=bfd".to_string(),
                format!("-L{}", dir.display()),
                "-static-pie".to_string(),
            ] {
                println!("cargo:rustc-link-arg-bin=berth-monitor={arg}");
            }
        }
        Err(e) => println!("cargo:warning=berth-monitor is linked dynamically: {e}"),
    }
}

/// Fills `dir` with the linker wrapper and `libgcc_s.a`, standing for the static unwinder.
fn link_dir(dir: &Path) -> Result<(), String> {
    if !Path::new(GNU_LD).exists() {
        return Err(format!("no {GNU_LD}"));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let wrapper = dir.join("ld.bfd");
    std::fs::write(&wrapper, WRAPPER.replace("LD", GNU_LD))
        .and_then(|()| std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("write {}: {e}", wrapper.display()))?;
    // A linker script: the static unwinder and the compiler runtime libgcc_s.so would bring
    // (static glibc needs its soft-float and personality routines).
    // Grouped with libc, which needs them in turn and comes later on the command line.
    let script = format!(
        "GROUP ( {} {} {} )\n",
        archive_path("libgcc_eh.a")?.display(),
        archive_path("libgcc.a")?.display(),
        archive_path("libc.a")?.display()
    );
    let gcc_s = dir.join("libgcc_s.a");
    std::fs::write(&gcc_s, script).map_err(|e| format!("write {}: {e}", gcc_s.display()))?;
    for archive in ["libm.a", "libseccomp.a"] {
        archive_path(archive)?;
    }
    Ok(())
}

/// Where the C compiler (rustc's linker driver) finds `archive`.
fn archive_path(archive: &str) -> Result<PathBuf, String> {
    let out = Command::new("cc")
        .arg(format!("-print-file-name={archive}"))
        .output()
        .map_err(|e| format!("cc -print-file-name: {e}"))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // cc prints the bare name back when it does not find the file.
    if !out.status.success() || !path.is_absolute() || !path.exists() {
        return Err(format!("no static {archive}"));
    }
    Ok(path)
}
