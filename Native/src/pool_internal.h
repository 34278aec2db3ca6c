/* What pool.c and queue.c share: this process's handle on a mapped pool. */
#ifndef LIFL_POOL_INTERNAL_H
#define LIFL_POOL_INTERNAL_H

#include "pool_layout.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lifl_pool {
    uint8_t *base; /* the whole segment */
    size_t size;
    pool_header *header;
    pool_slot *slots;
    slot_queue *queues;
    pool_record *records;
    page_meta *meta;
    uint8_t *data;
    uint64_t capacity;
    uint32_t pages;
    uint32_t record_count;
    int fd;                   /* the segment's, kept for the node-wide open/close lock (flock) */
    char path[112];           /* the segment's shm name, unlinked by the last process to close */
    uint32_t slot;            /* this process's */
    uint32_t slot_generation; /* of this process's attachment */
    _Atomic uint32_t interrupted; /* lifl_queue_interrupt happened and no lifl_queue_wait returned for it yet */
};

/* The longest name of a pool or beacon. */
#define NAME_MAX_CHARS 100

/* Whether `name` is a valid pool or beacon name: letters, digits, '.', '-', '_', at most NAME_MAX_CHARS. */
int lifl_valid_name(const char *name);

/*
 * Called with the mutex held, on a slot marked SLOT_RECOVERING: consumes and drops whatever is in its queue
 * (the recoverer stands in for the consumer, which is gone) and clears the sleeping flag.
 */
void lifl_queue_drain_locked(lifl_pool *pool, uint32_t slot);

#endif
