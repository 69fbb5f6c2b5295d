//! Link settings of the `berth-monitor` binary, one process per running container: packed
//! relative relocations (DT_RELR, glibc 2.36+), so the dynamic loader reads a small bitmap
//! instead of ~0.5 MB of `.rela.dyn` at every monitor start, and those pages never become
//! part of the monitor's memory.

fn main() {
    println!("cargo:rustc-link-arg-bin=berth-monitor=-Wl,-z,pack-relative-relocs");
}
