/*
 * liflnative: the node-wide dataplane of Orleans.LIFL.
 *
 * - A shared-memory pool per node (a POSIX shared-memory segment named per cluster) that several silo
 *   processes map. Buffers of 4 KiB to 1 GiB come from a buddy allocator; each buffer carries a reference
 *   count per attached process, so a buffer read by many is freed once, and the references of a process that
 *   died (kill -9) are reclaimed by lifl_pool_recover.
 * - One multi-producer, single-consumer descriptor queue per attached process, in the same segment: a push or
 *   a pop is a few atomic operations; a system call (futex) happens only to wake a consumer that sleeps.
 * - eBPF programs (sock_ops + sk_msg on a sockhash) that redirect messages between sockets of silos on the
 *   same node straight to the peer socket.
 * - Process beacons: how a process hears at once that another process of its node has died.
 *
 * Every function returns LIFL_OK (0) or a negative LIFL_E_* code; lifl_strerror names it. Functions marked
 * "errno" leave the failing system call's errno in errno.
 */
#ifndef LIFL_NATIVE_H
#define LIFL_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIFL_API __attribute__((visibility("default")))

enum lifl_status {
    LIFL_OK = 0,
    LIFL_E_NOMEM = -1,       /* the pool has no free block large enough */
    LIFL_E_INVAL = -2,       /* a bad argument: a zero length, a slot out of range, a name too long */
    LIFL_E_STALE = -3,       /* the descriptor names a buffer that was freed (generation mismatch) or is not one */
    LIFL_E_SYS = -4,         /* a system call failed; errno says why */
    LIFL_E_TOOLARGE = -5,    /* longer than the largest buffer (1 GiB) or than the pool */
    LIFL_E_SLOTS = -6,       /* every process slot of the pool is taken by a live process */
    LIFL_E_LAYOUT = -7,      /* the segment exists with another layout version, magic or was never initialized */
    LIFL_E_FULL = -8,        /* the queue is full */
    LIFL_E_EMPTY = -9,       /* the queue is empty */
    LIFL_E_TIMEOUT = -10,    /* nothing arrived before the timeout */
    LIFL_E_NOTHELD = -11,    /* this process holds no reference to the buffer it tried to give or release */
    LIFL_E_NOSLOT = -12,     /* the target slot is not attached to a live process */
    LIFL_E_UNSUPPORTED = -13, /* built without eBPF support, or the kernel lacks it */
    LIFL_E_NOBEACON = -14     /* no process of this node lit a beacon of that name */
};

#define LIFL_MIN_BUFFER_BYTES (4096ull)
#define LIFL_MAX_BUFFER_BYTES (1ull << 30)
#define LIFL_MAX_PROCESSES 64u
#define LIFL_QUEUE_CAPACITY 4096u

/* A buffer as another process can name it. 32 bytes; what crosses a process boundary. */
typedef struct lifl_desc {
    uint64_t offset;     /* of the buffer's first byte from the pool's data start (4 KiB aligned) */
    uint64_t length;     /* the bytes asked for (the block may be larger) */
    uint32_t record;     /* the buffer's record in the pool */
    uint32_t generation; /* the record's generation when the buffer was allocated; guards against reuse */
    uint64_t tag;        /* free for the user; carried unchanged through queues */
} lifl_desc;

typedef struct lifl_pool_stats {
    uint64_t capacity_bytes;    /* of the data area */
    uint64_t used_bytes;        /* in allocated blocks (block sizes, powers of two) */
    uint64_t requested_bytes;   /* sum of the lengths asked for by live buffers */
    uint64_t live_buffers;
    uint64_t allocations;       /* since the pool was created */
    uint64_t frees;
    uint64_t recovered_buffers; /* freed because every holder was a dead process */
    uint64_t recovered_processes;
    uint64_t largest_free_bytes; /* the largest block that can be allocated now */
    uint32_t attached_processes;
    uint32_t max_processes;
    uint64_t resident_bytes;    /* memory the segment holds now: pages written and not given back, metadata included */
} lifl_pool_stats;

typedef struct lifl_pool lifl_pool;

/*
 * Opens the pool "name" (letters, digits, '.', '-', '_'; at most 100 characters), creating it with a data area
 * of `capacity` bytes (rounded down to 4 KiB; at least 1 MiB) if it does not exist; an existing pool keeps its
 * capacity. A new pool's data area is cut to what the shared-memory file system (/dev/shm) has free, so that
 * writing a buffer can never hit a full file system (LIFL_E_NOMEM when not even 1 MiB is free). Maps it, reclaims the slots of dead processes, and attaches this process in a free slot.
 * errno on LIFL_E_SYS.
 */
LIFL_API int lifl_pool_open(const char *name, uint64_t capacity, lifl_pool **out);

/*
 * Detaches: releases every reference this process still holds (as if it had died), frees its slot, unmaps. The
 * last process to detach removes the segment, so an unused pool returns its memory; opening and this last close
 * are serialized across the node (flock on the segment), so an opener never attaches to a removed segment.
 */
LIFL_API void lifl_pool_close(lifl_pool *pool);

/*
 * Removes the pool "name" if no live process is attached to it (the references of dead ones are reclaimed
 * first): what a supervisor or test does after its processes were killed, since none of them closed it.
 * `removed` says whether it did; a pool that does not exist is not an error.
 */
LIFL_API int lifl_pool_remove_if_unused(const char *name, int *removed);

/* Removes the pool's name; processes that have it mapped keep using it. errno on LIFL_E_SYS. */
LIFL_API int lifl_pool_unlink(const char *name);

LIFL_API uint32_t lifl_pool_slot(const lifl_pool *pool);
LIFL_API void *lifl_pool_data(const lifl_pool *pool);       /* the data area's first byte in this process */
LIFL_API uint64_t lifl_pool_capacity(const lifl_pool *pool);

/* Allocates a buffer of `length` bytes (1 .. 1 GiB); this process holds its one reference. Contents undefined. */
LIFL_API int lifl_buf_alloc(lifl_pool *pool, uint64_t length, lifl_desc *out);

/* One more reference held by this process. LIFL_E_STALE if the buffer is gone. */
LIFL_API int lifl_buf_addref(lifl_pool *pool, const lifl_desc *desc);

/*
 * One more reference held by the process in `slot` (which must be attached), taken on its behalf: how a buffer
 * is handed to another process. This process must hold a reference itself (LIFL_E_NOTHELD otherwise).
 */
LIFL_API int lifl_buf_give(lifl_pool *pool, const lifl_desc *desc, uint32_t slot);

/* Drops one reference of this process; the buffer is freed when no process holds one. */
LIFL_API int lifl_buf_release(lifl_pool *pool, const lifl_desc *desc);

/*
 * Maps the buffer's pages into this process now, in one call instead of a page fault per page on first touch
 * (for_write: also allocates the pages not yet written). For a large buffer about to be read or written in a
 * hurry. This process must hold a reference (LIFL_E_NOTHELD otherwise).
 */
LIFL_API int lifl_buf_prefault(lifl_pool *pool, const lifl_desc *desc, int for_write);

/* The references held by all processes together; LIFL_E_STALE if the buffer is gone. */
LIFL_API int lifl_buf_refcount(lifl_pool *pool, const lifl_desc *desc, uint32_t *total);

/*
 * Reclaims the slots of processes that are gone (the pid no longer exists, or belongs to a process started at
 * another time): their references are dropped, buffers nobody else holds are freed, their queues emptied.
 * `recovered_buffers` (may be NULL) receives how many buffers this call freed.
 */
LIFL_API int lifl_pool_recover(lifl_pool *pool, uint64_t *recovered_buffers);

/* Whether `slot` is attached by a live process. */
LIFL_API int lifl_pool_slot_alive(lifl_pool *pool, uint32_t slot);

LIFL_API int lifl_pool_get_stats(lifl_pool *pool, lifl_pool_stats *out);

/*
 * Pushes a descriptor onto the inbound queue of the process in `slot`. Lock-free; wakes the consumer with a
 * futex only when it is asleep in lifl_queue_wait. By convention the producer first gives the consumer a
 * reference (lifl_buf_give), so that the buffer survives the producer and is reclaimed if the consumer dies.
 */
LIFL_API int lifl_queue_push(lifl_pool *pool, uint32_t slot, const lifl_desc *desc);

/* Pops from this process's own queue; LIFL_E_EMPTY when there is nothing. Single consumer: one thread at a time. */
LIFL_API int lifl_queue_pop(lifl_pool *pool, lifl_desc *out);

/* Pops, sleeping on a futex up to timeout_ms (negative: forever) while the queue is empty. */
LIFL_API int lifl_queue_wait(lifl_pool *pool, lifl_desc *out, int timeout_ms);

/* Wakes this process's consumer if it sleeps in lifl_queue_wait (it returns LIFL_E_TIMEOUT early). */
LIFL_API void lifl_queue_interrupt(lifl_pool *pool);

/* ---- eBPF socket redirection ---------------------------------------------------------------------------- */

typedef struct lifl_ebpf lifl_ebpf;

typedef struct lifl_ebpf_stats {
    uint64_t sockets_added;       /* sockets sock_ops put into the sockhash (in-kernel counter map) */
    uint64_t messages_redirected; /* sk_msg calls whose redirect to the peer socket succeeded */
    uint64_t messages_passed;     /* sk_msg calls without a peer in the map (went through TCP/IP) */
    uint64_t msg_prog_run_count;  /* the kernel's own run_cnt of the sk_msg program (bpf_prog_info) */
    uint64_t sockops_prog_run_count; /* the kernel's own run_cnt of the sock_ops program */
} lifl_ebpf_stats;

/*
 * Loads the programs and maps, or reuses those pinned under `pin_dir` (e.g. /sys/fs/bpf/lifl-<cluster>) by
 * another process of this node; attaches sock_ops to the cgroup v2 directory `cgroup_path` and sk_msg to the
 * sockhash; pins what it created. Turns on the kernel's program run statistics while the handle is open.
 * Needs root (CAP_BPF, CAP_NET_ADMIN). On failure `error` (error_len bytes) says which step failed and why.
 */
LIFL_API int lifl_ebpf_open(const char *pin_dir, const char *cgroup_path, lifl_ebpf **out, char *error, size_t error_len);

/* Sockets whose local or remote port is `port` are added to the sockhash when they connect (both ends). */
LIFL_API int lifl_ebpf_add_port(lifl_ebpf *ebpf, uint16_t port);
LIFL_API int lifl_ebpf_remove_port(lifl_ebpf *ebpf, uint16_t port);

LIFL_API int lifl_ebpf_get_stats(lifl_ebpf *ebpf, lifl_ebpf_stats *out);

/* Closes this process's handles; what is pinned stays in effect for the node's other processes. */
LIFL_API void lifl_ebpf_close(lifl_ebpf *ebpf);

/* Detaches the programs pinned under `pin_dir` and removes the pins: redirection stops for new messages. */
LIFL_API int lifl_ebpf_unpin(const char *pin_dir, const char *cgroup_path);

/* ---- process beacons ------------------------------------------------------------------------------------- */

/*
 * A beacon is a small shared-memory file (DIR/lifl.beacon.NAME, mode 0600) holding a robust, process-shared
 * mutex that one thread of its owner keeps locked for the owner's whole life. When that thread ends without
 * putting the beacon out (its process was killed, crashed or exited), the kernel releases the mutex as the
 * thread exits (its robust-futex list), which is before the process's memory is taken down and its sockets are
 * closed, and wakes a watcher blocked on it: a peer on the same node hears of the death in well under a
 * millisecond, where the end of file of its connections may come tens of milliseconds later.
 */
typedef struct lifl_beacon lifl_beacon;

enum lifl_beacon_state {
    LIFL_BEACON_LIT = 0,  /* its owner's thread holds it */
    LIFL_BEACON_OUT = 1,  /* its owner put it out (a graceful stop): no death to act on */
    LIFL_BEACON_DIED = 2  /* its owner's thread ended holding it: the owner is gone */
};

/*
 * Lights the beacon NAME (letters, digits, '.', '-', '_'; at most 100 characters) in `dir` (e.g. /dev/shm):
 * creates it under a temporary name, locks its mutex on the calling thread, and only then gives it its name
 * (replacing a dead owner's leftover of the same name). The calling thread holds it from now on: it must stay
 * alive while the beacon is lit, and is the only one that may put it out. errno on LIFL_E_SYS.
 */
LIFL_API int lifl_beacon_light(const char *dir, const char *name, lifl_beacon **out);

/*
 * Puts the beacon out, on the thread that lit it: marks it out, removes its name, unlocks the mutex (a watcher
 * wakes and sees LIFL_BEACON_OUT) and frees the handle. LIFL_E_INVAL from another thread (nothing changed).
 */
LIFL_API int lifl_beacon_put_out(lifl_beacon *beacon);

/*
 * Opens the beacon NAME of `dir` to watch it; LIFL_E_NOBEACON if there is none (its owner is on another node),
 * LIFL_E_LAYOUT if the file there is not a beacon or was not made by this user.
 */
LIFL_API int lifl_beacon_open(const char *dir, const char *name, lifl_beacon **out);

/*
 * Waits up to timeout_ms (negative: forever) for the beacon's owner to die or put it out; returns its state
 * (LIFL_BEACON_LIT when the time ran out) or a negative status. The first watcher to see a death leaves the mutex
 * unrecoverable, so every other watcher, now or later, sees it too. Any thread; many watchers may wait at once.
 */
LIFL_API int lifl_beacon_wait(lifl_beacon *beacon, int timeout_ms);

/* Closes a watched beacon (not a lit one: that is lifl_beacon_put_out's). */
LIFL_API void lifl_beacon_close(lifl_beacon *beacon);

/* Removes the beacon NAME of `dir` if its owner died (a leftover); says whether it did. */
LIFL_API int lifl_beacon_remove_if_dead(const char *dir, const char *name, int *removed);

LIFL_API const char *lifl_strerror(int status);

#ifdef __cplusplus
}
#endif

#endif
