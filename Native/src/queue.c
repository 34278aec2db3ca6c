/*
 * Each slot's inbound descriptor queue (layout in pool_layout.h). Producers are any attached process, the consumer
 * is the slot's owner. A push is a CAS on the tail plus a release store into the cell; the consumer sleeps on a
 * futex word in the segment (shared, so no FUTEX_PRIVATE_FLAG), and a producer makes the wake-up system call only
 * when the consumer announced that it sleeps:
 *
 *   producer: publish cell; fence; if (sleeping) { futex_word++; FUTEX_WAKE }
 *   consumer: sleeping = 1; fence; v = futex_word; re-check the queue; FUTEX_WAIT(futex_word, v)
 *
 * The two fences order each side's store before its load, so either the consumer's re-check sees the entry or the
 * producer sees `sleeping` and bumps the word, which makes a FUTEX_WAIT on the old value return at once.
 */
#include "pool_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex_call(_Atomic uint32_t *word, int operation, uint32_t value, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, operation, value, timeout, NULL, 0);
}

/* FUTEX_WAKE fails only for a bad address, which a word inside our mapping is not. */
static void wake_consumer(slot_queue *queue, int waiters)
{
    atomic_fetch_add(&queue->futex_word, 1);
    futex_call(&queue->futex_word, FUTEX_WAKE, (uint32_t)waiters, NULL);
}

/*
 * Takes the next entry of `slot`'s queue. Entries pushed for another attachment of the slot (an earlier process
 * that died, seen by a producer that raced its reclamation) are consumed and skipped; with `discard`, every
 * entry is. Only the slot's consumer (or, for a detached slot, the holder of the mutex) calls this.
 */
static int queue_take(lifl_pool *pool, uint32_t slot, uint32_t generation, int discard, lifl_desc *out)
{
    slot_queue *queue = &pool->queues[slot];
    uint64_t position = atomic_load_explicit(&queue->head, memory_order_relaxed);
    for (;;) {
        queue_cell *cell = &queue->cells[position & QUEUE_MASK];
        uint64_t lap = position & ~QUEUE_MASK;
        uint64_t sequence = atomic_load_explicit(&cell->sequence, memory_order_acquire);
        int64_t difference = (int64_t)(sequence - (lap + 1u));
        if (difference < 0)
            return LIFL_E_EMPTY;
        if (difference == 0) {
            uint32_t entry_generation = cell->slot_generation;
            lifl_desc entry = cell->desc;
            atomic_store_explicit(&cell->sequence, lap + LIFL_QUEUE_CAPACITY, memory_order_release);
            position++;
            atomic_store_explicit(&queue->head, position, memory_order_relaxed);
            if (!discard && entry_generation == generation) {
                *out = entry;
                return LIFL_OK;
            }
            continue;
        }
        /* Already consumed: a consumer died after freeing the cell and before moving the head past it. */
        position++;
        atomic_store_explicit(&queue->head, position, memory_order_relaxed);
    }
}

void lifl_queue_drain_locked(lifl_pool *pool, uint32_t slot)
{
    lifl_desc ignored;
    while (queue_take(pool, slot, 0, 1, &ignored) == LIFL_OK) {
    }
    atomic_store(&pool->queues[slot].sleeping, 0);
}

int lifl_queue_push(lifl_pool *pool, uint32_t slot, const lifl_desc *desc)
{
    if (!pool || !desc || slot >= LIFL_MAX_PROCESSES)
        return LIFL_E_INVAL;
    uint32_t word = atomic_load_explicit(&pool->slots[slot].word, memory_order_acquire);
    if (SLOT_STATE(word) != SLOT_ATTACHED)
        return LIFL_E_NOSLOT;
    slot_queue *queue = &pool->queues[slot];
    uint64_t position = atomic_load_explicit(&queue->tail, memory_order_relaxed);
    queue_cell *cell;
    uint64_t lap;
    for (;;) {
        cell = &queue->cells[position & QUEUE_MASK];
        lap = position & ~QUEUE_MASK;
        uint64_t sequence = atomic_load_explicit(&cell->sequence, memory_order_acquire);
        int64_t difference = (int64_t)(sequence - lap);
        if (difference == 0) {
            if (atomic_compare_exchange_weak_explicit(&queue->tail, &position, position + 1u, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (difference < 0) {
            return LIFL_E_FULL; /* the cell still holds the entry of the previous lap */
        } else {
            position = atomic_load_explicit(&queue->tail, memory_order_relaxed);
        }
    }
    cell->slot_generation = SLOT_GENERATION(word);
    cell->desc = *desc;
    atomic_store_explicit(&cell->sequence, lap + 1u, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&queue->sleeping, memory_order_relaxed))
        wake_consumer(queue, 1);
    return LIFL_OK;
}

int lifl_queue_pop(lifl_pool *pool, lifl_desc *out)
{
    if (!pool || !out)
        return LIFL_E_INVAL;
    return queue_take(pool, pool->slot, pool->slot_generation, 0, out);
}

int lifl_queue_wait(lifl_pool *pool, lifl_desc *out, int timeout_ms)
{
    if (!pool || !out)
        return LIFL_E_INVAL;
    slot_queue *queue = &pool->queues[pool->slot];
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t deadline = (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec + (int64_t)timeout_ms * 1000000ll;
    for (;;) {
        int rc = queue_take(pool, pool->slot, pool->slot_generation, 0, out);
        if (rc != LIFL_E_EMPTY)
            return rc;
        if (atomic_exchange(&pool->interrupted, 0))
            return LIFL_E_TIMEOUT;
        struct timespec remaining;
        if (timeout_ms >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            int64_t left = deadline - ((int64_t)now.tv_sec * 1000000000ll + now.tv_nsec);
            if (left <= 0)
                return LIFL_E_TIMEOUT;
            remaining.tv_sec = left / 1000000000ll;
            remaining.tv_nsec = left % 1000000000ll;
        }

        atomic_store_explicit(&queue->sleeping, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        uint32_t seen = atomic_load(&queue->futex_word);
        rc = queue_take(pool, pool->slot, pool->slot_generation, 0, out);
        if (rc != LIFL_E_EMPTY || atomic_load(&pool->interrupted)) {
            atomic_store_explicit(&queue->sleeping, 0, memory_order_relaxed);
            if (rc != LIFL_E_EMPTY)
                return rc;
            continue;
        }
        long result = futex_call(&queue->futex_word, FUTEX_WAIT, seen, timeout_ms >= 0 ? &remaining : NULL);
        int wait_errno = errno;
        atomic_store_explicit(&queue->sleeping, 0, memory_order_relaxed);
        if (result != 0 && wait_errno != EAGAIN && wait_errno != EINTR && wait_errno != ETIMEDOUT) {
            errno = wait_errno;
            return LIFL_E_SYS;
        }
    }
}

void lifl_queue_interrupt(lifl_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->interrupted, 1);
    wake_consumer(&pool->queues[pool->slot], INT_MAX);
}
