//! Giving freed heap memory back to the kernel. glibc keeps what a program frees in its
//! arenas (one per thread that allocated), so a daemon that held many objects and deleted
//! them keeps their pages resident; `malloc_trim` returns the free pages of every arena.

/// Returns the allocator's free pages to the kernel (glibc's `malloc_trim(0)`); nothing on
/// other C libraries. Costs a walk of the heap: call it after freeing much, not per free.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists; it is
    // thread-safe (takes each arena's lock) and has no pointer arguments.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_after_freeing_is_harmless() {
        let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 4096]).collect();
        drop(v);
        super::trim();
        let again = vec![7u8; 4096];
        assert_eq!(again[4095], 7);
    }
}
