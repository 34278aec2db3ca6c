/*
 * The shared-memory pool: segment creation and attachment, the buddy allocator, buffer records with per-process
 * reference counts, and the reclamation of what dead processes held.
 *
 * Invariants (see pool_layout.h for the fields):
 *
 * 1. A record's generation and total travel in one 64-bit word (`state`). Odd generation: the record names a
 *    buffer; even: the record is free. A reference is only ever taken by a CAS that finds the expected
 *    generation and a total above zero, so a freed or reallocated buffer cannot be resurrected, and the one CAS
 *    that brings the total to zero designates a single freer.
 * 2. sum(refs[s]) <= total at every instant: references are added to the total first and to the slot's count
 *    second, and removed from the slot's count first and from the total second. So a total of zero means no slot
 *    holds a reference, and the buffer may go. (A process killed between the two steps leaves the total one
 *    too high: that buffer leaks, it is never freed early.)
 * 3. Generations change only under the mutex (alloc: even -> odd; free: odd -> even). So whoever holds the mutex
 *    sees every record's generation fixed; "dying" records (odd generation, total 0) wait for their freer.
 * 4. Freeing is idempotent: free_record_locked moves the state from (g, 0) to (g + 1, 0) with a CAS under the
 *    mutex and does nothing if it finds anything else. A release that reached zero and the recovery that reached
 *    zero on another slot's drop, or a recovery that completes a dying record whose releaser died before taking
 *    the mutex, cannot free a buffer twice or free its successor.
 * 5. A slot leaves SLOT_ATTACHED only under the mutex, through SLOT_RECOVERING. Gives to a slot announce
 *    themselves in the giver's `giving[target]` counter before they look at the target's state; the detacher
 *    marks the slot RECOVERING, waits for those counters to drain, and only then drops the slot's references.
 *    A give therefore either saw RECOVERING and failed, or completed before the drop and is dropped with it.
 * 6. The allocator (free lists, page metadata, record free list, block fields) changes only under the mutex. If
 *    a process dies holding it (EOWNERDEAD), the allocator is rebuilt from the records, which are the truth: a
 *    block is allocated exactly when a record with an odd generation names it.
 */
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_PREFIX "/lifl."
#define SEGMENT_MODE 0660
#define OPEN_WAIT_NS (5ll * 1000000000ll)    /* for a racing creator to finish initializing */
#define GIVE_DRAIN_WAIT_NS (1000000000ll)    /* for gives in progress to a slot being detached */
#define POLL_INTERVAL_NS (1000000l)

/* ---- small helpers ----------------------------------------------------------------------------------------- */

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec;
}

static void pause_briefly(void)
{
    struct timespec interval = {0, POLL_INTERVAL_NS};
    nanosleep(&interval, NULL);
}

static uint64_t pages_of_order(uint32_t order)
{
    return 1ull << (order - POOL_MIN_ORDER);
}

static uint32_t order_for_length(uint64_t length)
{
    if (length <= POOL_PAGE_SIZE)
        return POOL_MIN_ORDER;
    return 64u - (uint32_t)__builtin_clzll(length - 1u);
}

/* The largest block a pool of `pages` pages can ever hold: the one carved at page 0. */
static uint32_t largest_order(uint32_t pages)
{
    uint32_t order = POOL_MIN_ORDER + 31u - (uint32_t)__builtin_clz(pages);
    return order < POOL_MAX_ORDER ? order : POOL_MAX_ORDER;
}

int lifl_valid_name(const char *name)
{
    size_t length = 0;
    if (!name)
        return 0;
    for (; name[length]; length++) {
        char c = name[length];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '-' || c == '_';
        if (!ok || length >= NAME_MAX_CHARS)
            return 0;
    }
    return length > 0;
}

static void segment_path(const char *name, char *path, size_t size)
{
    snprintf(path, size, SEGMENT_PREFIX "%s", name);
}

/* ---- process identity -------------------------------------------------------------------------------------- */

enum process_status { PROCESS_GONE, PROCESS_RUNNING, PROCESS_UNKNOWN };

/*
 * Reads the state (field 3) and start time in clock ticks since boot (field 22) of /proc/<pid>/stat. The start
 * time tells a reused pid apart; a zombie (state Z or X) counts as gone since it will never touch the pool again.
 */
static enum process_status read_process(pid_t pid, uint64_t *start_time)
{
    char path[48];
    char text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? PROCESS_GONE : PROCESS_UNKNOWN;
    ssize_t length = read(fd, text, sizeof text - 1u);
    int read_errno = errno;
    close(fd);
    if (length < 0)
        return read_errno == ESRCH ? PROCESS_GONE : PROCESS_UNKNOWN;
    text[length] = '\0';

    /* The command name (field 2) is in parentheses and may itself hold spaces and parentheses. */
    char *end_of_name = strrchr(text, ')');
    if (!end_of_name || end_of_name[1] != ' ')
        return PROCESS_UNKNOWN;
    char *field = end_of_name + 2; /* field 3 */
    char state = *field;
    for (int number = 3; number < 22; number++) {
        field = strchr(field, ' ');
        if (!field)
            return PROCESS_UNKNOWN;
        field++;
    }
    uint64_t value = 0;
    for (; *field >= '0' && *field <= '9'; field++)
        value = value * 10u + (uint64_t)(*field - '0');
    *start_time = value;
    return state == 'Z' || state == 'X' ? PROCESS_GONE : PROCESS_RUNNING;
}

/* Whether the process that attached as (pid, start_time) still runs. When in doubt, it does. */
static int process_alive(int32_t pid, uint64_t start_time)
{
    int saved_errno = errno;
    int alive = 1;
    uint64_t now_start = 0;
    if (pid <= 0) {
        alive = 0;
    } else if (kill(pid, 0) != 0 && errno == ESRCH) {
        alive = 0;
    } else {
        enum process_status status = read_process(pid, &now_start);
        if (status == PROCESS_GONE)
            alive = 0;
        else if (status == PROCESS_RUNNING && start_time != 0 && now_start != start_time)
            alive = 0; /* the pid was reused */
    }
    errno = saved_errno;
    return alive;
}

/* ---- the mutex --------------------------------------------------------------------------------------------- */

static void rebuild_allocator_locked(lifl_pool *pool);
static void recover_locked(lifl_pool *pool, uint64_t *freed);

/* Takes the pool's mutex. If its holder died, the allocator may be half-updated: rebuild it, finish whatever
 * reclamation the dead holder was doing, then mark the mutex consistent. errno on LIFL_E_SYS. */
static int pool_lock(lifl_pool *pool)
{
    int rc = pthread_mutex_lock(&pool->header->mutex);
    if (rc == 0)
        return LIFL_OK;
    if (rc == EOWNERDEAD) {
        rebuild_allocator_locked(pool);
        recover_locked(pool, NULL);
        rc = pthread_mutex_consistent(&pool->header->mutex);
        if (rc == 0)
            return LIFL_OK;
        pthread_mutex_unlock(&pool->header->mutex);
    }
    errno = rc;
    return LIFL_E_SYS;
}

static void pool_unlock(lifl_pool *pool)
{
    pthread_mutex_unlock(&pool->header->mutex);
}

/* ---- buddy allocator (under the mutex) --------------------------------------------------------------------- */

static void free_list_push(lifl_pool *pool, uint32_t order, uint32_t page)
{
    pool_header *h = pool->header;
    uint32_t index = order - POOL_MIN_ORDER;
    page_meta *meta = &pool->meta[page];
    meta->state = PAGE_FREE;
    meta->order = (uint8_t)order;
    meta->prev = POOL_NONE;
    meta->next = h->free_head[index];
    if (meta->next != POOL_NONE)
        pool->meta[meta->next].prev = page;
    h->free_head[index] = page;
    h->free_blocks[index]++;
}

static void free_list_remove(lifl_pool *pool, uint32_t order, uint32_t page)
{
    pool_header *h = pool->header;
    uint32_t index = order - POOL_MIN_ORDER;
    page_meta *meta = &pool->meta[page];
    if (meta->prev != POOL_NONE)
        pool->meta[meta->prev].next = meta->next;
    else
        h->free_head[index] = meta->next;
    if (meta->next != POOL_NONE)
        pool->meta[meta->next].prev = meta->prev;
    h->free_blocks[index]--;
}

/* Covers [first, end) with the largest aligned power-of-two blocks that fit, all free. */
static void carve_free(lifl_pool *pool, uint64_t first, uint64_t end)
{
    uint64_t page = first;
    while (page < end) {
        uint32_t order = POOL_MAX_ORDER;
        while (order > POOL_MIN_ORDER &&
               ((page & (pages_of_order(order) - 1u)) != 0 || page + pages_of_order(order) > end))
            order--;
        free_list_push(pool, order, (uint32_t)page);
        page += pages_of_order(order);
    }
}

static uint32_t block_alloc_locked(lifl_pool *pool, uint32_t order)
{
    pool_header *h = pool->header;
    uint32_t found = order;
    while (found <= POOL_MAX_ORDER && h->free_head[found - POOL_MIN_ORDER] == POOL_NONE)
        found++;
    if (found > POOL_MAX_ORDER)
        return POOL_NONE;
    uint32_t page = h->free_head[found - POOL_MIN_ORDER];
    free_list_remove(pool, found, page);
    while (found > order) {
        found--;
        free_list_push(pool, found, page + (uint32_t)pages_of_order(found));
    }
    pool->meta[page].state = PAGE_USED;
    pool->meta[page].order = (uint8_t)order;
    return page;
}

static void block_free_locked(lifl_pool *pool, uint32_t page, uint32_t order)
{
    while (order < POOL_MAX_ORDER) {
        uint64_t buddy = page ^ pages_of_order(order);
        if (buddy + pages_of_order(order) > pool->pages)
            break;
        page_meta *meta = &pool->meta[buddy];
        if (meta->state != PAGE_FREE || meta->order != order)
            break;
        free_list_remove(pool, order, (uint32_t)buddy);
        /* The higher of the two is no longer a block head. */
        pool->meta[buddy > page ? buddy : page].state = PAGE_INTERIOR;
        page = buddy < page ? (uint32_t)buddy : page;
        order++;
    }
    free_list_push(pool, order, page);
}

static uint64_t largest_free_locked(const lifl_pool *pool)
{
    for (uint32_t order = POOL_MAX_ORDER; order >= POOL_MIN_ORDER; order--)
        if (pool->header->free_blocks[order - POOL_MIN_ORDER] != 0)
            return 1ull << order;
    return 0;
}

/* ---- records ----------------------------------------------------------------------------------------------- */

static uint32_t record_take_locked(lifl_pool *pool)
{
    pool_header *h = pool->header;
    uint32_t index = h->record_free_head;
    if (index != POOL_NONE) {
        h->record_free_head = pool->records[index].next_free;
        return index;
    }
    if (h->record_high_water < pool->record_count)
        return h->record_high_water++;
    return POOL_NONE;
}

static void record_put_locked(lifl_pool *pool, uint32_t index)
{
    pool->records[index].next_free = pool->header->record_free_head;
    pool->header->record_free_head = index;
}

/* Frees the buffer of record `index` if it is still dying in `generation` (invariant 4); 1 if this call did. */
static int free_record_locked(lifl_pool *pool, uint32_t index, uint32_t generation)
{
    pool_record *record = &pool->records[index];
    uint64_t expected = RECORD_STATE(generation, 0);
    if (!atomic_compare_exchange_strong(&record->state, &expected, RECORD_STATE(generation + 1u, 0)))
        return 0;
    uint32_t order = atomic_load_explicit(&record->order, memory_order_relaxed);
    pool_header *h = pool->header;
    block_free_locked(pool, atomic_load_explicit(&record->page, memory_order_relaxed), order);
    h->used_bytes -= 1ull << order;
    h->requested_bytes -= atomic_load_explicit(&record->length, memory_order_relaxed);
    h->live_buffers--;
    h->frees++;
    record_put_locked(pool, index);
    return 1;
}

/* The record a descriptor names, if it names a live buffer of this pool. */
static int record_lookup(lifl_pool *pool, const lifl_desc *desc, pool_record **out)
{
    if (!pool || !desc)
        return LIFL_E_INVAL;
    if (desc->record >= pool->record_count || !RECORD_GENERATION_LIVE(desc->generation))
        return LIFL_E_STALE;
    pool_record *record = &pool->records[desc->record];
    uint64_t state = atomic_load(&record->state);
    if (RECORD_GENERATION(state) != desc->generation || RECORD_TOTAL(state) == 0)
        return LIFL_E_STALE;
    uint64_t offset = (uint64_t)atomic_load_explicit(&record->page, memory_order_relaxed) << POOL_PAGE_SHIFT;
    if (offset != desc->offset || atomic_load_explicit(&record->length, memory_order_relaxed) != desc->length)
        return LIFL_E_STALE;
    *out = record;
    return LIFL_OK;
}

/* One more reference on the total, if the buffer is still live in `generation`. */
static int total_take(pool_record *record, uint32_t generation)
{
    uint64_t state = atomic_load(&record->state);
    for (;;) {
        if (RECORD_GENERATION(state) != generation || RECORD_TOTAL(state) == 0)
            return LIFL_E_STALE;
        if (RECORD_TOTAL(state) == UINT32_MAX)
            return LIFL_E_INVAL;
        if (atomic_compare_exchange_weak(&record->state, &state, state + 1u))
            return LIFL_OK;
    }
}

/*
 * Drops `count` references from the total; the call that reaches zero frees the buffer (taking the mutex unless
 * `locked`). `freed` (may be NULL) says whether this call freed it.
 */
static int total_drop(lifl_pool *pool, uint32_t index, uint32_t generation, uint32_t count, int locked, int *freed)
{
    pool_record *record = &pool->records[index];
    uint64_t state = atomic_load(&record->state);
    uint64_t next;
    if (freed)
        *freed = 0;
    for (;;) {
        if (RECORD_GENERATION(state) != generation || RECORD_TOTAL(state) == 0)
            return LIFL_E_STALE;
        uint32_t total = RECORD_TOTAL(state);
        next = RECORD_STATE(generation, total > count ? total - count : 0);
        if (atomic_compare_exchange_weak(&record->state, &state, next))
            break;
    }
    if (RECORD_TOTAL(next) != 0)
        return LIFL_OK;
    int did_free;
    if (locked) {
        did_free = free_record_locked(pool, index, generation);
    } else {
        /* If the lock fails the record stays dying; the next recovery or rebuild frees it. */
        int rc = pool_lock(pool);
        if (rc != LIFL_OK)
            return rc;
        did_free = free_record_locked(pool, index, generation);
        pool_unlock(pool);
    }
    if (freed)
        *freed = did_free;
    return LIFL_OK;
}

/* ---- allocator rebuild after EOWNERDEAD -------------------------------------------------------------------- */

/* Pushes the free blocks inside block (page, order): all of it when nothing live lies inside, else its halves. */
static void rebuild_fill(lifl_pool *pool, uint32_t page, uint32_t order)
{
    page_meta *meta = &pool->meta[page];
    if (meta->state == PAGE_USED && meta->order == order)
        return;
    uint32_t bit = 1u << (order - POOL_MIN_ORDER);
    if (order > POOL_MIN_ORDER && (meta->rebuild_orders & bit) != 0) {
        meta->rebuild_orders &= ~bit;
        rebuild_fill(pool, page, order - 1u);
        rebuild_fill(pool, page + (uint32_t)pages_of_order(order - 1u), order - 1u);
        return;
    }
    free_list_push(pool, order, page);
}

/*
 * Rebuilds the free lists, page metadata, record free list and the derived statistics from the records
 * (invariant 6). Records whose allocation was cut short (still an even generation) are free; dying records
 * (odd, total 0) whose freer never got the mutex are freed.
 */
static void rebuild_allocator_locked(lifl_pool *pool)
{
    pool_header *h = pool->header;
    int saved_errno = errno;
    size_t meta_bytes = (size_t)pool->pages * sizeof(page_meta);
    /* Punching the metadata out of the segment zeroes it without touching (allocating) every page of it. */
    if (madvise(pool->meta, pool_round_up(meta_bytes, POOL_PAGE_SIZE), MADV_REMOVE) != 0)
        memset(pool->meta, 0, meta_bytes);
    errno = saved_errno;

    for (uint32_t order = 0; order < POOL_ORDERS; order++) {
        h->free_head[order] = POOL_NONE;
        h->free_blocks[order] = 0;
    }
    h->record_free_head = POOL_NONE;
    h->used_bytes = 0;
    h->requested_bytes = 0;
    h->live_buffers = 0;
    h->rebuilds++;

    for (uint32_t index = h->record_high_water; index-- > 0;) {
        pool_record *record = &pool->records[index];
        uint64_t state = atomic_load(&record->state);
        uint32_t generation = RECORD_GENERATION(state);
        if (RECORD_GENERATION_LIVE(generation) && RECORD_TOTAL(state) == 0) {
            atomic_store(&record->state, RECORD_STATE(generation + 1u, 0));
            h->frees++;
            generation++;
        }
        if (!RECORD_GENERATION_LIVE(generation)) {
            for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
                atomic_store_explicit(&record->refs[slot], 0, memory_order_relaxed);
            record_put_locked(pool, index);
            continue;
        }
        uint32_t page = atomic_load_explicit(&record->page, memory_order_relaxed);
        uint32_t order = atomic_load_explicit(&record->order, memory_order_relaxed);
        pool->meta[page].state = PAGE_USED;
        pool->meta[page].order = (uint8_t)order;
        for (uint32_t above = order + 1u; above <= POOL_MAX_ORDER; above++) {
            uint32_t head = page & ~(uint32_t)(pages_of_order(above) - 1u);
            pool->meta[head].rebuild_orders |= 1u << (above - POOL_MIN_ORDER);
        }
        h->used_bytes += 1ull << order;
        h->requested_bytes += atomic_load_explicit(&record->length, memory_order_relaxed);
        h->live_buffers++;
    }

    /* The same top-level blocks as at creation, each split only as far as live blocks inside require. */
    uint64_t page = 0;
    while (page < pool->pages) {
        uint32_t order = POOL_MAX_ORDER;
        while (order > POOL_MIN_ORDER &&
               ((page & (pages_of_order(order) - 1u)) != 0 || page + pages_of_order(order) > pool->pages))
            order--;
        rebuild_fill(pool, (uint32_t)page, order);
        page += pages_of_order(order);
    }
}

/* ---- detaching slots (under the mutex) --------------------------------------------------------------------- */

/* Waits (bounded) until no give to `target` is in progress, except from the slots in `skip` (dead givers). */
static void wait_for_gives_locked(lifl_pool *pool, uint32_t target, uint64_t skip)
{
    int64_t deadline = 0;
    for (uint32_t giver = 0; giver < LIFL_MAX_PROCESSES; giver++) {
        if (skip & (1ull << giver))
            continue;
        while (atomic_load(&pool->slots[giver].giving[target]) != 0) {
            int64_t now = monotonic_ns();
            if (deadline == 0)
                deadline = now + GIVE_DRAIN_WAIT_NS;
            else if (now > deadline)
                return; /* a giver stopped mid-give: its reference would be left to the slot's next occupant */
            sched_yield();
        }
    }
}

/*
 * Detaches the slots in `slots`: no new gives or pushes reach them, their references are dropped (buffers
 * nobody else holds are freed), their queues emptied and the slots freed. `dead` are those whose process is
 * gone. Returns how many buffers the dropped references freed.
 */
static uint64_t detach_slots_locked(lifl_pool *pool, uint64_t slots, uint64_t dead)
{
    uint64_t freed = 0;
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++) {
        if (!(slots & (1ull << slot)))
            continue;
        uint32_t word = atomic_load(&pool->slots[slot].word);
        atomic_store(&pool->slots[slot].word, SLOT_WORD(SLOT_GENERATION(word), SLOT_RECOVERING));
    }
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
        if (slots & (1ull << slot))
            wait_for_gives_locked(pool, slot, dead);

    uint32_t high_water = pool->header->record_high_water;
    for (uint32_t index = 0; index < high_water; index++) {
        pool_record *record = &pool->records[index];
        uint64_t state = atomic_load(&record->state);
        uint32_t generation = RECORD_GENERATION(state); /* fixed while we hold the mutex (invariant 3) */
        if (!RECORD_GENERATION_LIVE(generation))
            continue;
        uint32_t dropped = 0;
        for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
            if ((slots & (1ull << slot)) && atomic_load_explicit(&record->refs[slot], memory_order_relaxed) != 0)
                dropped += atomic_exchange(&record->refs[slot], 0);
        if (dropped != 0) {
            int did_free = 0;
            total_drop(pool, index, generation, dropped, 1, &did_free);
            freed += (uint64_t)did_free;
        } else if (RECORD_TOTAL(state) == 0) {
            /* Dying: its releaser has not freed it yet, and may never (if it died before taking the mutex). */
            free_record_locked(pool, index, generation);
        }
    }

    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++) {
        if (!(slots & (1ull << slot)))
            continue;
        pool_slot *entry = &pool->slots[slot];
        lifl_queue_drain_locked(pool, slot);
        for (uint32_t target = 0; target < LIFL_MAX_PROCESSES; target++)
            atomic_store(&entry->giving[target], 0);
        atomic_store_explicit(&entry->pid, 0, memory_order_relaxed);
        atomic_store_explicit(&entry->start_time, 0, memory_order_relaxed);
        uint32_t word = atomic_load(&entry->word);
        atomic_store(&entry->word, SLOT_WORD(SLOT_GENERATION(word), SLOT_FREE));
    }
    return freed;
}

/*
 * Reclaims every slot whose process is gone, and every slot left RECOVERING by a holder of the mutex that died
 * mid-way (detaching is idempotent). This process's own slot is never a candidate.
 */
static void recover_locked(lifl_pool *pool, uint64_t *freed)
{
    uint64_t dead = 0;
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++) {
        if (slot == pool->slot)
            continue;
        pool_slot *entry = &pool->slots[slot];
        uint32_t state = SLOT_STATE(atomic_load(&entry->word));
        if (state == SLOT_RECOVERING ||
            (state == SLOT_ATTACHED && !process_alive(atomic_load_explicit(&entry->pid, memory_order_relaxed),
                                                      atomic_load_explicit(&entry->start_time, memory_order_relaxed))))
            dead |= 1ull << slot;
    }
    uint64_t count = 0;
    if (dead != 0) {
        count = detach_slots_locked(pool, dead, dead);
        pool->header->recovered_processes += (uint64_t)__builtin_popcountll(dead);
        pool->header->recovered_buffers += count;
    }
    if (freed)
        *freed = count;
}

/* ---- opening ----------------------------------------------------------------------------------------------- */

static int initialize_mutex(pthread_mutex_t *mutex)
{
    pthread_mutexattr_t attributes;
    int rc = pthread_mutexattr_init(&attributes);
    if (rc != 0)
        return rc;
    rc = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return rc;
}

/* Points `pool` at the regions of the segment mapped at `base`. */
static void pool_view(lifl_pool *pool, uint8_t *base)
{
    pool_header *h = (pool_header *)base;
    memset(pool, 0, sizeof *pool);
    pool->base = base;
    pool->size = h->segment_size;
    pool->header = h;
    pool->slots = (pool_slot *)(base + h->slots_offset);
    pool->queues = (slot_queue *)(base + h->queues_offset);
    pool->records = (pool_record *)(base + h->records_offset);
    pool->meta = (page_meta *)(base + h->meta_offset);
    pool->data = base + h->data_offset;
    pool->capacity = h->capacity;
    pool->pages = h->pages;
    pool->record_count = h->records;
    pool->slot = POOL_NONE;
}

/*
 * Asks for transparent huge pages on the mapping. Buffers of tens of MB read and written in several streams at once
 * (an aggregator folding updates) otherwise spend much of their time in TLB misses. It takes effect where the
 * machine allows huge pages for shared memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled: advise or always)
 * and is a harmless no-op elsewhere, so its result is not checked.
 */
static void advise_huge_pages(void *mapped, size_t size)
{
#ifdef MADV_HUGEPAGE
    (void)madvise(mapped, size, MADV_HUGEPAGE);
#else
    (void)mapped;
    (void)size;
#endif
}

/*
 * Fills a segment this process just created (O_EXCL, so nobody else initializes it): sizes it, lays out the
 * header, carves the data area into free blocks, and publishes the magic last. errno on LIFL_E_SYS.
 */
static int create_segment(int fd, uint64_t capacity, uint8_t **out)
{
    /*
     * The segment is sparse: its pages are taken from the shared-memory file system as buffers are first written.
     * A write the file system has no room for kills the writer with SIGBUS, so the data area never promises more
     * than the file system has free now.
     */
    struct statvfs fs;
    if (fstatvfs(fd, &fs) != 0)
        return LIFL_E_SYS;
    uint64_t available = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
    /* The metadata shrinks with the data area (records, page table): a few rounds settle both. */
    for (int round = 0; round < 8 && capacity + pool_geometry_for(capacity).data_offset > available; round++) {
        uint64_t overhead = pool_geometry_for(capacity).data_offset;
        capacity = available > overhead + POOL_MIN_CAPACITY ? (available - overhead) & ~(POOL_PAGE_SIZE - 1u)
                                                             : POOL_MIN_CAPACITY;
    }
    if (capacity + pool_geometry_for(capacity).data_offset > available)
        return LIFL_E_NOMEM;
    pool_geometry g = pool_geometry_for(capacity);
    if (ftruncate(fd, (off_t)g.segment_size) != 0)
        return LIFL_E_SYS;
    void *mapped = mmap(NULL, g.segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED)
        return LIFL_E_SYS;
    advise_huge_pages(mapped, g.segment_size);
    uint8_t *base = mapped;
    pool_header *h = (pool_header *)base;
    h->version = POOL_LAYOUT_VERSION;
    h->page_size = (uint32_t)POOL_PAGE_SIZE;
    h->capacity = g.capacity;
    h->segment_size = g.segment_size;
    h->slots_offset = g.slots_offset;
    h->queues_offset = g.queues_offset;
    h->records_offset = g.records_offset;
    h->meta_offset = g.meta_offset;
    h->data_offset = g.data_offset;
    h->pages = g.pages;
    h->records = g.records;
    for (uint32_t order = 0; order < POOL_ORDERS; order++)
        h->free_head[order] = POOL_NONE;
    h->record_free_head = POOL_NONE;
    int rc = initialize_mutex(&h->mutex);
    if (rc != 0) {
        munmap(base, g.segment_size);
        errno = rc;
        return LIFL_E_SYS;
    }
    lifl_pool view;
    pool_view(&view, base);
    carve_free(&view, 0, view.pages);
    atomic_store_explicit(&h->magic, POOL_MAGIC, memory_order_release);
    *out = base;
    return LIFL_OK;
}

/*
 * Maps a segment another process created, waiting (bounded) for its creator to publish the magic. LIFL_E_LAYOUT
 * when it never does or the segment is not one of this layout; errno on LIFL_E_SYS.
 */
static int map_segment(int fd, uint8_t **out)
{
    int64_t deadline = monotonic_ns() + OPEN_WAIT_NS;
    struct stat st;
    for (;;) {
        if (fstat(fd, &st) != 0)
            return LIFL_E_SYS;
        if ((uint64_t)st.st_size >= POOL_PAGE_SIZE)
            break;
        if (monotonic_ns() > deadline)
            return LIFL_E_LAYOUT;
        pause_briefly();
    }
    void *mapped = mmap(NULL, POOL_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED)
        return LIFL_E_SYS;
    const pool_header *h = mapped;
    int rc = LIFL_OK;
    for (;;) {
        uint64_t magic = atomic_load_explicit(&((pool_header *)mapped)->magic, memory_order_acquire);
        if (magic == POOL_MAGIC)
            break;
        if (magic != 0 || monotonic_ns() > deadline) {
            rc = LIFL_E_LAYOUT;
            break;
        }
        pause_briefly();
    }
    uint64_t segment_size = 0;
    if (rc == LIFL_OK) {
        uint64_t capacity = h->capacity;
        int plausible = h->version == POOL_LAYOUT_VERSION && h->page_size == POOL_PAGE_SIZE &&
                        capacity >= POOL_MIN_CAPACITY && capacity <= POOL_MAX_CAPACITY &&
                        (capacity & (POOL_PAGE_SIZE - 1u)) == 0;
        pool_geometry g = pool_geometry_for(plausible ? capacity : POOL_MIN_CAPACITY);
        if (!plausible || g.segment_size != h->segment_size || g.slots_offset != h->slots_offset ||
            g.queues_offset != h->queues_offset || g.records_offset != h->records_offset ||
            g.meta_offset != h->meta_offset || g.data_offset != h->data_offset || g.pages != h->pages ||
            g.records != h->records)
            rc = LIFL_E_LAYOUT;
        segment_size = g.segment_size;
    }
    munmap(mapped, POOL_PAGE_SIZE);
    if (rc != LIFL_OK)
        return rc;
    if (fstat(fd, &st) != 0)
        return LIFL_E_SYS;
    if ((uint64_t)st.st_size != segment_size)
        return LIFL_E_LAYOUT;
    mapped = mmap(NULL, segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED)
        return LIFL_E_SYS;
    advise_huge_pages(mapped, segment_size);
    *out = mapped;
    return LIFL_OK;
}

/* Reclaims dead processes' slots, then takes a free one. */
static int attach(lifl_pool *pool)
{
    uint64_t start_time = 0;
    if (read_process(getpid(), &start_time) != PROCESS_RUNNING)
        start_time = 0;
    int rc = pool_lock(pool);
    if (rc != LIFL_OK)
        return rc;
    recover_locked(pool, NULL);
    rc = LIFL_E_SLOTS;
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++) {
        pool_slot *entry = &pool->slots[slot];
        uint32_t word = atomic_load(&entry->word);
        if (SLOT_STATE(word) != SLOT_FREE)
            continue;
        uint32_t generation = (SLOT_GENERATION(word) + 1u) & 0xffffffu;
        atomic_store_explicit(&entry->pid, (int32_t)getpid(), memory_order_relaxed);
        atomic_store_explicit(&entry->start_time, start_time, memory_order_relaxed);
        atomic_store(&pool->queues[slot].sleeping, 0);
        atomic_store(&entry->word, SLOT_WORD(generation, SLOT_ATTACHED));
        pool->slot = slot;
        pool->slot_generation = generation;
        rc = LIFL_OK;
        break;
    }
    pool_unlock(pool);
    return rc;
}

/*
 * Takes the node-wide open/close lock of a segment (flock) and says whether the segment still has its name (the
 * last process to close may have removed it while we waited). On failure closes fd; errno says why.
 */
static int lock_segment(int fd, int *linked)
{
    struct stat st;
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return LIFL_E_SYS;
    }
    *linked = st.st_nlink > 0;
    return LIFL_OK;
}

/* ---- public API -------------------------------------------------------------------------------------------- */

int lifl_pool_open(const char *name, uint64_t capacity, lifl_pool **out)
{
    if (!out)
        return LIFL_E_INVAL;
    *out = NULL;
    capacity &= ~(POOL_PAGE_SIZE - 1u);
    if (!lifl_valid_name(name) || capacity < POOL_MIN_CAPACITY || capacity > POOL_MAX_CAPACITY)
        return LIFL_E_INVAL;
    char path[sizeof SEGMENT_PREFIX + NAME_MAX_CHARS];
    segment_path(name, path, sizeof path);

    /*
     * Opening and the last close are serialized node-wide by an flock on the segment: the last process to detach
     * unlinks it (so an unused pool gives its memory back), and an opener that finds the segment unlinked once it
     * holds the lock starts over instead of attaching to a pool nobody else will find.
     */
    int fd;
    int created = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt >= 100)
            return LIFL_E_SYS;
        created = 0;
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, SEGMENT_MODE);
        if (fd >= 0) {
            created = 1;
        } else {
            if (errno != EEXIST)
                return LIFL_E_SYS;
            fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
            /* Unlinked between the two calls: try creating it again. */
            if (fd < 0 && errno == ENOENT)
                continue;
            if (fd < 0)
                return LIFL_E_SYS;
        }
        int linked;
        if (lock_segment(fd, &linked) != LIFL_OK)
            return LIFL_E_SYS;
        if (linked)
            break;
        /* The last process closed it while we waited for the lock. */
        close(fd);
    }

    uint8_t *base = NULL;
    int rc = created ? create_segment(fd, capacity, &base) : map_segment(fd, &base);
    int saved_errno = errno;
    if (rc != LIFL_OK) {
        if (created)
            shm_unlink(path);
        close(fd);
        errno = saved_errno;
        return rc;
    }

    lifl_pool *pool = malloc(sizeof *pool);
    if (!pool) {
        munmap(base, ((pool_header *)base)->segment_size);
        if (created)
            shm_unlink(path);
        close(fd);
        errno = ENOMEM;
        return LIFL_E_SYS;
    }
    pool_view(pool, base);
    pool->fd = fd;
    snprintf(pool->path, sizeof pool->path, "%s", path);
    rc = attach(pool);
    if (rc != LIFL_OK) {
        saved_errno = errno;
        munmap(pool->base, pool->size);
        if (created)
            shm_unlink(path);
        close(fd);
        free(pool);
        errno = saved_errno;
        return rc;
    }
    flock(fd, LOCK_UN);
    *out = pool;
    return LIFL_OK;
}

void lifl_pool_close(lifl_pool *pool)
{
    if (!pool)
        return;
    int locked = flock(pool->fd, LOCK_EX) == 0;
    uint32_t attached = 1;
    if (pool_lock(pool) == LIFL_OK) {
        recover_locked(pool, NULL);
        /* Unless another process took our slot for dead (it cannot, while we run; but never free a stranger's). */
        if (atomic_load(&pool->slots[pool->slot].word) == SLOT_WORD(pool->slot_generation, SLOT_ATTACHED))
            detach_slots_locked(pool, 1ull << pool->slot, 0);
        attached = 0;
        for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
            if (SLOT_STATE(atomic_load(&pool->slots[slot].word)) != SLOT_FREE)
                attached++;
        pool_unlock(pool);
    }
    /* Nobody holds a reference once nobody is attached: the segment's memory can go. Openers wait on the lock. */
    struct stat st;
    if (locked && attached == 0 && fstat(pool->fd, &st) == 0 && st.st_nlink > 0) /* still ours under that name */
        shm_unlink(pool->path);
    munmap(pool->base, pool->size);
    close(pool->fd); /* releases the lock */
    free(pool);
}

int lifl_pool_remove_if_unused(const char *name, int *removed)
{
    if (!removed)
        return LIFL_E_INVAL;
    *removed = 0;
    if (!lifl_valid_name(name))
        return LIFL_E_INVAL;
    char path[sizeof SEGMENT_PREFIX + NAME_MAX_CHARS];
    segment_path(name, path, sizeof path);
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? LIFL_OK : LIFL_E_SYS;
    int linked;
    if (lock_segment(fd, &linked) != LIFL_OK)
        return LIFL_E_SYS;
    if (!linked) {
        close(fd);
        return LIFL_OK;
    }
    uint8_t *base;
    int rc = map_segment(fd, &base);
    if (rc != LIFL_OK) {
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    lifl_pool view;
    pool_view(&view, base);
    view.fd = fd;
    rc = pool_lock(&view);
    if (rc == LIFL_OK) {
        recover_locked(&view, NULL);
        uint32_t attached = 0;
        for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
            if (SLOT_STATE(atomic_load(&view.slots[slot].word)) != SLOT_FREE)
                attached++;
        pool_unlock(&view);
        if (attached == 0 && shm_unlink(path) == 0)
            *removed = 1;
    }
    munmap(view.base, view.size);
    close(fd);
    return rc;
}

int lifl_pool_unlink(const char *name)
{
    if (!lifl_valid_name(name))
        return LIFL_E_INVAL;
    char path[sizeof SEGMENT_PREFIX + NAME_MAX_CHARS];
    segment_path(name, path, sizeof path);
    return shm_unlink(path) == 0 ? LIFL_OK : LIFL_E_SYS;
}

uint32_t lifl_pool_slot(const lifl_pool *pool)
{
    return pool ? pool->slot : POOL_NONE;
}

void *lifl_pool_data(const lifl_pool *pool)
{
    return pool ? pool->data : NULL;
}

uint64_t lifl_pool_capacity(const lifl_pool *pool)
{
    return pool ? pool->capacity : 0;
}

int lifl_buf_alloc(lifl_pool *pool, uint64_t length, lifl_desc *out)
{
    if (!pool || !out || length == 0)
        return LIFL_E_INVAL;
    if (length > LIFL_MAX_BUFFER_BYTES || length > pool->capacity)
        return LIFL_E_TOOLARGE;
    uint32_t order = order_for_length(length);
    if (order > largest_order(pool->pages))
        return LIFL_E_TOOLARGE;

    int rc = pool_lock(pool);
    if (rc != LIFL_OK)
        return rc;
    uint32_t index = record_take_locked(pool);
    if (index == POOL_NONE) {
        pool_unlock(pool);
        return LIFL_E_NOMEM;
    }
    uint32_t page = block_alloc_locked(pool, order);
    if (page == POOL_NONE) {
        record_put_locked(pool, index);
        pool_unlock(pool);
        return LIFL_E_NOMEM;
    }
    pool_record *record = &pool->records[index];
    atomic_store_explicit(&record->page, page, memory_order_relaxed);
    atomic_store_explicit(&record->order, order, memory_order_relaxed);
    atomic_store_explicit(&record->length, length, memory_order_relaxed);
    /* The slot's reference before the total (invariant 2): a death in between leaves an even generation, which
     * a rebuild treats as free and whose counts it clears. */
    atomic_store_explicit(&record->refs[pool->slot], 1, memory_order_relaxed);
    uint32_t generation = RECORD_GENERATION(atomic_load_explicit(&record->state, memory_order_relaxed)) + 1u;
    atomic_store_explicit(&record->state, RECORD_STATE(generation, 1), memory_order_release);
    pool_header *h = pool->header;
    h->used_bytes += 1ull << order;
    h->requested_bytes += length;
    h->live_buffers++;
    h->allocations++;
    pool_unlock(pool);

    out->offset = (uint64_t)page << POOL_PAGE_SHIFT;
    out->length = length;
    out->record = index;
    out->generation = generation;
    out->tag = 0;
    return LIFL_OK;
}

int lifl_buf_addref(lifl_pool *pool, const lifl_desc *desc)
{
    pool_record *record;
    int rc = record_lookup(pool, desc, &record);
    if (rc == LIFL_OK)
        rc = total_take(record, desc->generation);
    if (rc == LIFL_OK)
        atomic_fetch_add(&record->refs[pool->slot], 1);
    return rc;
}

int lifl_buf_give(lifl_pool *pool, const lifl_desc *desc, uint32_t slot)
{
    pool_record *record;
    if (slot >= LIFL_MAX_PROCESSES)
        return LIFL_E_INVAL;
    int rc = record_lookup(pool, desc, &record);
    if (rc != LIFL_OK)
        return rc;
    if (atomic_load(&record->refs[pool->slot]) == 0)
        return LIFL_E_NOTHELD;
    /* Announce the give before looking at the target (invariant 5). */
    _Atomic uint32_t *giving = &pool->slots[pool->slot].giving[slot];
    atomic_fetch_add(giving, 1);
    if (SLOT_STATE(atomic_load(&pool->slots[slot].word)) != SLOT_ATTACHED)
        rc = LIFL_E_NOSLOT;
    else
        rc = total_take(record, desc->generation);
    if (rc == LIFL_OK)
        atomic_fetch_add(&record->refs[slot], 1);
    atomic_fetch_sub(giving, 1);
    return rc;
}

int lifl_buf_release(lifl_pool *pool, const lifl_desc *desc)
{
    pool_record *record;
    int rc = record_lookup(pool, desc, &record);
    if (rc != LIFL_OK)
        return rc;
    _Atomic uint32_t *held = &record->refs[pool->slot];
    uint32_t count = atomic_load(held);
    do {
        if (count == 0)
            return LIFL_E_NOTHELD;
    } while (!atomic_compare_exchange_weak(held, &count, count - 1u));
    return total_drop(pool, desc->record, desc->generation, 1, 0, NULL);
}

int lifl_buf_prefault(lifl_pool *pool, const lifl_desc *desc, int for_write)
{
    pool_record *record;
    int rc = record_lookup(pool, desc, &record);
    if (rc != LIFL_OK)
        return rc;
    if (atomic_load(&record->refs[pool->slot]) == 0)
        return LIFL_E_NOTHELD;
    uintptr_t start = (uintptr_t)(pool->data + desc->offset) & ~(uintptr_t)(POOL_PAGE_SIZE - 1);
    uintptr_t end = (uintptr_t)(pool->data + desc->offset + desc->length);
    size_t length = pool_round_up(end - start, POOL_PAGE_SIZE);
    if (madvise((void *)start, length, for_write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
        return LIFL_OK;
    if (errno != EINVAL)
        return LIFL_E_SYS;
    /* A kernel before 5.14: touch a byte per page (a read maps the page, a write of the same value allocates it). */
    for (uintptr_t page = start; page < end; page += POOL_PAGE_SIZE) {
        volatile uint8_t *byte = (volatile uint8_t *)page;
        uint8_t value = *byte;
        if (for_write)
            *byte = value;
    }
    return LIFL_OK;
}

int lifl_buf_refcount(lifl_pool *pool, const lifl_desc *desc, uint32_t *total)
{
    pool_record *record;
    if (!total)
        return LIFL_E_INVAL;
    int rc = record_lookup(pool, desc, &record);
    if (rc != LIFL_OK)
        return rc;
    uint64_t state = atomic_load(&record->state);
    if (RECORD_GENERATION(state) != desc->generation || RECORD_TOTAL(state) == 0)
        return LIFL_E_STALE;
    *total = RECORD_TOTAL(state);
    return LIFL_OK;
}

int lifl_pool_recover(lifl_pool *pool, uint64_t *recovered_buffers)
{
    if (!pool)
        return LIFL_E_INVAL;
    uint64_t freed = 0;
    int rc = pool_lock(pool);
    if (rc != LIFL_OK)
        return rc;
    recover_locked(pool, &freed);
    pool_unlock(pool);
    if (recovered_buffers)
        *recovered_buffers = freed;
    return LIFL_OK;
}

int lifl_pool_slot_alive(lifl_pool *pool, uint32_t slot)
{
    if (!pool || slot >= LIFL_MAX_PROCESSES)
        return LIFL_E_INVAL;
    if (slot == pool->slot)
        return 1;
    pool_slot *entry = &pool->slots[slot];
    for (;;) {
        uint32_t word = atomic_load(&entry->word);
        if (SLOT_STATE(word) != SLOT_ATTACHED)
            return 0;
        int32_t pid = atomic_load_explicit(&entry->pid, memory_order_relaxed);
        uint64_t start_time = atomic_load_explicit(&entry->start_time, memory_order_relaxed);
        if (atomic_load(&entry->word) == word) /* not re-attached while we read */
            return process_alive(pid, start_time);
    }
}

int lifl_pool_get_stats(lifl_pool *pool, lifl_pool_stats *out)
{
    if (!pool || !out)
        return LIFL_E_INVAL;
    int rc = pool_lock(pool);
    if (rc != LIFL_OK)
        return rc;
    const pool_header *h = pool->header;
    out->capacity_bytes = pool->capacity;
    out->used_bytes = h->used_bytes;
    out->requested_bytes = h->requested_bytes;
    out->live_buffers = h->live_buffers;
    out->allocations = h->allocations;
    out->frees = h->frees;
    out->recovered_buffers = h->recovered_buffers;
    out->recovered_processes = h->recovered_processes;
    out->largest_free_bytes = largest_free_locked(pool);
    out->attached_processes = 0;
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
        if (SLOT_STATE(atomic_load(&pool->slots[slot].word)) == SLOT_ATTACHED)
            out->attached_processes++;
    out->max_processes = LIFL_MAX_PROCESSES;
    pool_unlock(pool);
    /* A freed block keeps its pages (reusing them costs no page faults): the segment's allocated blocks say what
     * the pool really holds of the node's memory, which its used bytes do not. */
    struct stat st;
    out->resident_bytes = fstat(pool->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
    return LIFL_OK;
}
