/*
 * The layout of a pool's shared-memory segment, as every process that maps it sees it. Internal to liflnative
 * (and to its tests, which look inside); a change to anything here is a change of POOL_LAYOUT_VERSION.
 *
 *   offset 0        pool_header      magic, version, sizes, the robust mutex, allocator heads, statistics
 *   slots_offset    pool_slot[64]    one per attachable process
 *   queues_offset   slot_queue[64]   each slot's inbound descriptor queue
 *   records_offset  pool_record[n]   one per live buffer: block, generation, reference counts
 *   meta_offset     page_meta[p]     one per 4 KiB data page: buddy allocator state (only block heads written)
 *   data_offset     data area        `capacity` bytes, 4 KiB aligned
 *
 * Every region starts on a page. The segment is created sparse (ftruncate) and everything is designed so that
 * all-zero bytes are a valid initial state: queues, records and page metadata cost memory only once touched.
 */
#ifndef LIFL_POOL_LAYOUT_H
#define LIFL_POOL_LAYOUT_H

#include "lifl_native.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define POOL_MAGIC 0x4c49464c504f4f4cull /* "LIFLPOOL" */
#define POOL_LAYOUT_VERSION 1u

#define POOL_PAGE_SHIFT 12u
#define POOL_PAGE_SIZE (1ull << POOL_PAGE_SHIFT)
#define POOL_MIN_ORDER 12u /* 4 KiB */
#define POOL_MAX_ORDER 30u /* 1 GiB */
#define POOL_ORDERS (POOL_MAX_ORDER - POOL_MIN_ORDER + 1u)
#define POOL_MIN_CAPACITY (1ull << 20)
/* Page indices are 32-bit with UINT32_MAX as "none". */
#define POOL_MAX_CAPACITY ((uint64_t)(UINT32_MAX - 1u) << POOL_PAGE_SHIFT)
/* Live buffers at once; a pool with fewer pages gets one record per page. */
#define POOL_MAX_RECORDS 65536u
#define POOL_NONE UINT32_MAX
#define POOL_CACHE_LINE 64

/* ---- header ------------------------------------------------------------------------------------------------ */

typedef struct pool_header {
    /* Written last by the creator (release); openers wait for it (acquire) before reading anything else. */
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t page_size;
    uint64_t capacity; /* of the data area */
    uint64_t segment_size;
    uint64_t slots_offset;
    uint64_t queues_offset;
    uint64_t records_offset;
    uint64_t meta_offset;
    uint64_t data_offset;
    uint32_t pages;   /* in the data area */
    uint32_t records; /* in the record table */

    /* Robust and process-shared. Guards the allocator (free lists, page metadata, record free list, block
     * fields of records), the statistics below and the slot table's transitions. */
    alignas(POOL_CACHE_LINE) pthread_mutex_t mutex;

    /* Under the mutex. */
    alignas(POOL_CACHE_LINE) uint32_t free_head[POOL_ORDERS]; /* page index of the first free block, by order */
    uint32_t free_blocks[POOL_ORDERS];
    uint32_t record_free_head;  /* freed records, linked through pool_record.next_free */
    uint32_t record_high_water; /* records at and above it were never used (all zero) */
    uint64_t used_bytes;
    uint64_t requested_bytes;
    uint64_t live_buffers;
    uint64_t allocations;
    uint64_t frees;
    uint64_t recovered_buffers;
    uint64_t recovered_processes;
    uint64_t rebuilds; /* allocator rebuilds after a process died holding the mutex */
} pool_header;

/* ---- process slots ----------------------------------------------------------------------------------------- */

enum slot_state {
    SLOT_FREE = 0,
    SLOT_ATTACHED = 1,
    SLOT_RECOVERING = 2 /* being detached (close) or reclaimed (recover); only under the mutex */
};

/* The slot's state and generation in one word, so a reader sees a consistent pair. The generation counts
 * attachments: a queue entry or a reference meant for an earlier occupant is told apart by it. */
#define SLOT_WORD(generation, state) (((uint32_t)(generation) << 8) | (uint32_t)(state))
#define SLOT_STATE(word) ((word) & 0xffu)
#define SLOT_GENERATION(word) ((word) >> 8)

typedef struct pool_slot {
    alignas(POOL_CACHE_LINE) _Atomic uint32_t word;
    _Atomic int32_t pid;
    _Atomic uint64_t start_time; /* field 22 of /proc/<pid>/stat; 0 when it could not be read */
    /* giving[t]: gives from this slot to slot t in progress. Detaching slot t waits for every slot's giving[t] to
     * drain after marking t RECOVERING, so no reference can land in t's column after its references were
     * dropped. */
    alignas(POOL_CACHE_LINE) _Atomic uint32_t giving[LIFL_MAX_PROCESSES];
} pool_slot;

/* ---- descriptor queues ------------------------------------------------------------------------------------- */

/*
 * A bounded multi-producer, single-consumer queue of cells with sequence numbers (after Vyukov). The sequence is
 * stored relative to the cell's index so that zero is the initial state: for position pos (cell pos & mask, lap
 * base L = pos & ~mask) the cell is free for a producer when sequence == L, holds an entry when it is L + 1,
 * and is free for the next lap once consumed (L + capacity).
 */
typedef struct queue_cell {
    _Atomic uint64_t sequence;
    uint32_t slot_generation; /* of the consumer slot as the producer saw it; older entries are dropped */
    uint32_t reserved;
    lifl_desc desc;
} queue_cell;

typedef struct slot_queue {
    alignas(POOL_CACHE_LINE) _Atomic uint64_t tail; /* next position a producer claims */
    alignas(POOL_CACHE_LINE) _Atomic uint64_t head; /* next position the consumer reads; consumer only */
    alignas(POOL_CACHE_LINE) _Atomic uint32_t futex_word; /* bumped to wake the consumer */
    _Atomic uint32_t sleeping;                           /* the consumer is (about to be) in FUTEX_WAIT */
    alignas(POOL_CACHE_LINE) queue_cell cells[LIFL_QUEUE_CAPACITY];
} slot_queue;

#define QUEUE_MASK ((uint64_t)LIFL_QUEUE_CAPACITY - 1u)

/* ---- buffer records ---------------------------------------------------------------------------------------- */

/* The record's generation and total reference count in one word: a reference is taken with one CAS that also
 * checks the generation, and only the CAS that brings the total to zero frees the buffer. */
#define RECORD_STATE(generation, total) (((uint64_t)(generation) << 32) | (uint32_t)(total))
#define RECORD_GENERATION(state) ((uint32_t)((state) >> 32))
#define RECORD_TOTAL(state) ((uint32_t)(state))
/* Odd generations are live (or dying: total 0, its free pending); even ones are free. */
#define RECORD_GENERATION_LIVE(generation) (((generation) & 1u) != 0)

typedef struct pool_record {
    alignas(POOL_CACHE_LINE) _Atomic uint64_t state;
    /* The block; written under the mutex before the state is published, read by anyone (relaxed) to check a
     * descriptor. */
    _Atomic uint64_t length;
    _Atomic uint32_t page;
    _Atomic uint32_t order;
    uint32_t next_free; /* under the mutex, while free */
    /* References held by each slot. sum(refs) <= total at every instant: a reference is added to the total
     * before the slot's count and removed from the slot's count before the total. */
    alignas(POOL_CACHE_LINE) _Atomic uint32_t refs[LIFL_MAX_PROCESSES];
} pool_record;

/* ---- allocator page metadata ------------------------------------------------------------------------------- */

enum page_state {
    PAGE_INTERIOR = 0, /* not the head of a block (or never written) */
    PAGE_FREE = 1,     /* head of a free block of `order`, linked into its free list */
    PAGE_USED = 2      /* head of an allocated block of `order` */
};

typedef struct page_meta {
    uint32_t next;
    uint32_t prev;
    uint8_t state;
    uint8_t order;
    uint16_t reserved;
    uint32_t rebuild_orders; /* during a rebuild only: bit (order - 12) set when that block holds a live one */
} page_meta;

_Static_assert(sizeof(pool_header) <= POOL_PAGE_SIZE, "the header fits the page openers map first");
_Static_assert(sizeof(lifl_desc) == 32, "lifl_desc is 32 bytes");
_Static_assert(sizeof(queue_cell) == 48, "queue cells are 48 bytes");
_Static_assert(sizeof(page_meta) == 16, "page metadata is 16 bytes");
_Static_assert((LIFL_QUEUE_CAPACITY & (LIFL_QUEUE_CAPACITY - 1u)) == 0, "queue capacity is a power of two");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2, "shared atomics must be lock-free");

/* ---- sizes ------------------------------------------------------------------------------------------------- */

static inline uint64_t pool_round_up(uint64_t value, uint64_t alignment)
{
    return (value + alignment - 1u) & ~(alignment - 1u);
}

typedef struct pool_geometry {
    uint64_t capacity;
    uint64_t segment_size;
    uint64_t slots_offset;
    uint64_t queues_offset;
    uint64_t records_offset;
    uint64_t meta_offset;
    uint64_t data_offset;
    uint32_t pages;
    uint32_t records;
} pool_geometry;

/* The layout of a pool whose data area is `capacity` bytes (a multiple of the page size, within bounds). */
static inline pool_geometry pool_geometry_for(uint64_t capacity)
{
    pool_geometry g;
    g.capacity = capacity;
    g.pages = (uint32_t)(capacity >> POOL_PAGE_SHIFT);
    g.records = g.pages < POOL_MAX_RECORDS ? g.pages : POOL_MAX_RECORDS;
    g.slots_offset = pool_round_up(sizeof(pool_header), POOL_PAGE_SIZE);
    g.queues_offset = g.slots_offset + pool_round_up(sizeof(pool_slot) * LIFL_MAX_PROCESSES, POOL_PAGE_SIZE);
    g.records_offset = g.queues_offset + pool_round_up(sizeof(slot_queue) * LIFL_MAX_PROCESSES, POOL_PAGE_SIZE);
    g.meta_offset = g.records_offset + pool_round_up(sizeof(pool_record) * (uint64_t)g.records, POOL_PAGE_SIZE);
    g.data_offset = g.meta_offset + pool_round_up(sizeof(page_meta) * (uint64_t)g.pages, POOL_PAGE_SIZE);
    g.segment_size = g.data_offset + capacity;
    return g;
}

#endif
