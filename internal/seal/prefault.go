package seal

import "runtime"

// prefault readies n bytes of the heap, mapped, for the KDF's allocation
// of about that size, which comes right after. Measured here (a VM, 2
// cores): Argon2id's 64 MiB in a fresh process took 33,000 page faults
// (each page read, then written: twice) and 1.2 s of CPU, against 0.2 s
// once the pages are mapped; written here first they cost about 0.3 s.
// (Asking for huge pages made it 0.1 s, but the heap reused that range
// afterwards in 2 MiB pages: a push's peak memory grew by 30 MB.) A clone from
// an encrypted bucket onto a fresh node derives a key before anything
// else, so this is time on its critical path. The freed buffer's pages
// are reused by the KDF's allocation (after a garbage collection; Derive
// returns them to the OS when the KDF is done).
func prefault(n int64) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}
