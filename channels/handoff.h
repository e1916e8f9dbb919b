/*
 * handoff.h — the one place where troupe tells ThreadSanitizer about
 * cross-thread hand-offs.
 *
 * Concurrency Kit's atomics on x86-64 are inline assembly: ThreadSanitizer
 * cannot see them, so it cannot see the happens-before edge that a lock-free
 * enqueue/dequeue pair creates. Every hand-off of an object from one thread
 * to another therefore goes through this wrapper: the producer calls
 * tr__handoff_release(obj) after it has finished writing the object and
 * before the atomic that publishes it; the consumer calls
 * tr__handoff_acquire(obj) after the atomic that observed it and before it
 * reads the object. In normal builds both compile to nothing.
 *
 * This is how troupe stays TSan-clean without suppressing its own code: a
 * race report in troupe's code is a bug; only ck's internals are suppressed
 * (tests/tsan.supp).
 */
#ifndef TR_HANDOFF_H
#define TR_HANDOFF_H

#if defined(__SANITIZE_THREAD__)
#define TR__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TR__TSAN 1
#endif
#endif

#ifdef TR__TSAN
#include <sanitizer/tsan_interface.h>
static inline void tr__handoff_release(const void *obj) { __tsan_release((void *)obj); }
static inline void tr__handoff_acquire(const void *obj) { __tsan_acquire((void *)obj); }
#else
static inline void tr__handoff_release(const void *obj) { (void)obj; }
static inline void tr__handoff_acquire(const void *obj) { (void)obj; }
#endif

#endif /* TR_HANDOFF_H */
