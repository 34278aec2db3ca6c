/*
 * The buddy allocator: every size class from 1 B to 1 GiB (in a sparse multi-GiB pool, touching two pages per
 * buffer), block alignment and disjointness, the size and capacity limits, exhaustion of blocks and of records,
 * merging back to the initial blocks after everything is freed, 10,000 rounds of random allocations and
 * frees that leave the pool exactly as it started, and the resident bytes: what is written, kept after a free.
 */
#include "test_support.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define KIB (1ull << 10)

/* What lifl_pool_open refuses. */
static void test_arguments(void)
{
    lifl_pool *pool = (lifl_pool *)0x1;
    char long_name[128];
    memset(long_name, 'a', sizeof long_name);
    long_name[101] = '\0';
    CHECK_RC(lifl_pool_open(long_name, 4 * MIB, &pool), LIFL_E_INVAL);
    CHECK(pool == NULL, "out is cleared on failure");
    CHECK_RC(lifl_pool_open("", 4 * MIB, &pool), LIFL_E_INVAL);
    CHECK_RC(lifl_pool_open("a/b", 4 * MIB, &pool), LIFL_E_INVAL);
    CHECK_RC(lifl_pool_open(NULL, 4 * MIB, &pool), LIFL_E_INVAL);
    CHECK_RC(lifl_pool_open("test.small", MIB - 4096, &pool), LIFL_E_INVAL);
    CHECK_RC(lifl_pool_open("test.small", 4 * MIB, NULL), LIFL_E_INVAL);
    CHECK_RC(lifl_pool_unlink("bad/name"), LIFL_E_INVAL);

    const char *name = test_pool_name("args");
    CHECK_OK(lifl_pool_open(name, MIB + 4095, &pool)); /* rounded down to 1 MiB */
    CHECK(lifl_pool_capacity(pool) == MIB, "capacity %llu", (unsigned long long)lifl_pool_capacity(pool));
    CHECK(((uintptr_t)lifl_pool_data(pool) & 4095u) == 0, "data area is page aligned");
    lifl_desc desc;
    CHECK_RC(lifl_buf_alloc(pool, 0, &desc), LIFL_E_INVAL);
    CHECK_RC(lifl_buf_alloc(pool, 1, NULL), LIFL_E_INVAL);

    /* An existing pool keeps its capacity. */
    lifl_pool *second;
    CHECK_OK(lifl_pool_open(name, 64 * MIB, &second));
    CHECK(lifl_pool_capacity(second) == MIB, "capacity %llu", (unsigned long long)lifl_pool_capacity(second));
    lifl_pool_close(pool);
    lifl_pool_close(second);

    /* The last process to close removes the segment: the next open creates a new pool with the capacity it asks. */
    CHECK_RC(lifl_pool_unlink(name), LIFL_E_SYS);
    CHECK(errno == ENOENT, "errno %d", errno);
    CHECK_OK(lifl_pool_open(name, 2 * MIB, &pool));
    CHECK(lifl_pool_capacity(pool) == 2 * MIB, "capacity %llu", (unsigned long long)lifl_pool_capacity(pool));
    CHECK_OK(lifl_pool_unlink(name));
    lifl_pool_close(pool);
}

/* Every size class, up to a 1 GiB buffer, in a 4 GiB pool of which only a few pages are ever touched. */
static void test_size_classes(void)
{
    static const uint64_t lengths[] = {1, 4 * KIB, 4 * KIB + 1, MIB, 256 * MIB, GIB};
    static const uint64_t blocks[] = {4 * KIB, 4 * KIB, 8 * KIB, MIB, 256 * MIB, GIB};
    enum { COUNT = sizeof lengths / sizeof lengths[0] };
    const char *name = test_pool_name("sizes");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 4 * GIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    CHECK(base.capacity_bytes == 4 * GIB && base.used_bytes == 0 && base.live_buffers == 0 &&
              base.largest_free_bytes == GIB && base.attached_processes == 1 &&
              base.max_processes == LIFL_MAX_PROCESSES,
          "initial stats: capacity %llu used %llu largest %llu attached %u", (unsigned long long)base.capacity_bytes,
          (unsigned long long)base.used_bytes, (unsigned long long)base.largest_free_bytes, base.attached_processes);
    uint32_t initial_blocks[POOL_ORDERS];
    test_check_allocator(name, initial_blocks);
    CHECK(initial_blocks[POOL_ORDERS - 1] == 4, "4 GiB is four 1 GiB blocks, not %u", initial_blocks[POOL_ORDERS - 1]);

    lifl_desc descs[COUNT];
    uint64_t used = 0, requested = 0;
    for (int i = 0; i < COUNT; i++) {
        CHECK_OK(lifl_buf_alloc(pool, lengths[i], &descs[i]));
        CHECK(descs[i].length == lengths[i], "length %llu", (unsigned long long)descs[i].length);
        CHECK(descs[i].offset % blocks[i] == 0, "buffer of %llu at %llu is not aligned to its block",
              (unsigned long long)lengths[i], (unsigned long long)descs[i].offset);
        CHECK(descs[i].offset + blocks[i] <= 4 * GIB, "inside the data area");
        CHECK((descs[i].generation & 1u) == 1u, "live generations are odd");
        used += blocks[i];
        requested += lengths[i];
        for (int j = 0; j < i; j++)
            CHECK(descs[i].offset + blocks[i] <= descs[j].offset || descs[j].offset + blocks[j] <= descs[i].offset,
                  "buffers %d and %d overlap", i, j);
        uint32_t total = 0;
        CHECK_OK(lifl_buf_refcount(pool, &descs[i], &total));
        CHECK(total == 1, "a new buffer has one reference, not %u", total);
        /* The first and last byte are ours to write. */
        uint8_t *bytes = (uint8_t *)lifl_pool_data(pool) + descs[i].offset;
        bytes[0] = (uint8_t)i;
        bytes[lengths[i] - 1] = (uint8_t)i;
    }
    lifl_pool_stats now = test_stats(pool);
    CHECK(now.used_bytes == used && now.requested_bytes == requested && now.live_buffers == COUNT &&
              now.allocations == COUNT,
          "used %llu/%llu requested %llu/%llu live %llu", (unsigned long long)now.used_bytes,
          (unsigned long long)used, (unsigned long long)now.requested_bytes, (unsigned long long)requested,
          (unsigned long long)now.live_buffers);
    /* 4 GiB less 1 GiB, 256 MiB and a bit: two 1 GiB blocks remain whole. */
    CHECK(now.largest_free_bytes == GIB, "largest free %llu", (unsigned long long)now.largest_free_bytes);
    test_check_allocator(name, NULL);

    lifl_desc extra;
    CHECK_RC(lifl_buf_alloc(pool, GIB + 1, &extra), LIFL_E_TOOLARGE);
    CHECK_RC(lifl_buf_alloc(pool, UINT64_MAX, &extra), LIFL_E_TOOLARGE);

    for (int i = 0; i < COUNT; i++) {
        uint8_t *bytes = (uint8_t *)lifl_pool_data(pool) + descs[i].offset;
        CHECK(bytes[0] == (uint8_t)i && bytes[lengths[i] - 1] == (uint8_t)i, "buffer %d was overwritten", i);
        CHECK_OK(lifl_buf_release(pool, &descs[i]));
    }
    now = test_stats(pool);
    CHECK_STATS_AT_BASELINE(now, base);
    CHECK(now.frees == COUNT, "frees %llu", (unsigned long long)now.frees);
    uint32_t final_blocks[POOL_ORDERS];
    test_check_allocator(name, final_blocks);
    CHECK(memcmp(initial_blocks, final_blocks, sizeof initial_blocks) == 0, "blocks did not merge back");

    /* Four 1 GiB buffers fill it; a fifth does not fit. */
    lifl_desc whole[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(lifl_buf_alloc(pool, GIB, &whole[i]));
    CHECK_RC(lifl_buf_alloc(pool, 1, &extra), LIFL_E_NOMEM);
    CHECK(test_stats(pool).largest_free_bytes == 0, "nothing free");
    for (int i = 0; i < 4; i++)
        CHECK_OK(lifl_buf_release(pool, &whole[i]));
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);

    lifl_pool_close(pool);
    test_forget_pool(name);
}

/* Limits that come from the pool's own size, not from the 1 GiB maximum. */
static void test_pool_limits(void)
{
    const char *name = test_pool_name("limits");
    lifl_pool *pool;
    /* 3 MiB: a 2 MiB and a 1 MiB block. */
    CHECK_OK(lifl_pool_open(name, 3 * MIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    CHECK(base.largest_free_bytes == 2 * MIB, "largest %llu", (unsigned long long)base.largest_free_bytes);
    lifl_desc desc;
    CHECK_RC(lifl_buf_alloc(pool, 4 * MIB, &desc), LIFL_E_TOOLARGE); /* longer than the pool */
    CHECK_RC(lifl_buf_alloc(pool, 3 * MIB, &desc), LIFL_E_TOOLARGE); /* a 4 MiB block: can never fit */
    lifl_desc big, small;
    CHECK_OK(lifl_buf_alloc(pool, 2 * MIB, &big));
    CHECK_OK(lifl_buf_alloc(pool, MIB, &small));
    CHECK_RC(lifl_buf_alloc(pool, 1, &desc), LIFL_E_NOMEM);
    CHECK_OK(lifl_buf_release(pool, &big));
    CHECK_RC(lifl_buf_alloc(pool, 2 * MIB + 1, &desc), LIFL_E_TOOLARGE);
    CHECK_OK(lifl_buf_release(pool, &small));
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

/* Filling a pool page by page, then emptying it in another order: one block again. */
static void test_fill_and_merge(void)
{
    enum { PAGES = 256 };
    const char *name = test_pool_name("fill");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, MIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    static lifl_desc pages[PAGES];
    for (int i = 0; i < PAGES; i++)
        CHECK_OK(lifl_buf_alloc(pool, 1 + (uint64_t)i, &pages[i]));
    lifl_desc desc;
    CHECK_RC(lifl_buf_alloc(pool, 1, &desc), LIFL_E_NOMEM);
    lifl_pool_stats full = test_stats(pool);
    CHECK(full.used_bytes == MIB && full.largest_free_bytes == 0 && full.live_buffers == PAGES, "full pool stats");
    test_check_allocator(name, NULL);
    /* Odd pages first: nothing can merge until the even ones go. */
    for (int i = 1; i < PAGES; i += 2)
        CHECK_OK(lifl_buf_release(pool, &pages[i]));
    CHECK(test_stats(pool).largest_free_bytes == 4 * KIB, "only single pages are free");
    CHECK_RC(lifl_buf_alloc(pool, 4 * KIB + 1, &desc), LIFL_E_NOMEM);
    for (int i = PAGES - 2; i >= 0; i -= 2)
        CHECK_OK(lifl_buf_release(pool, &pages[i]));
    lifl_pool_stats now = test_stats(pool);
    CHECK_STATS_AT_BASELINE(now, base);
    CHECK(now.largest_free_bytes == MIB, "merged back into one 1 MiB block");
    test_check_allocator(name, NULL);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

/* A pool with more pages than records runs out of records first: LIFL_E_NOMEM with free space left. */
static void test_record_exhaustion(void)
{
    const char *name = test_pool_name("records");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 512 * MIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    lifl_desc *descs = malloc(sizeof(lifl_desc) * POOL_MAX_RECORDS);
    CHECK(descs != NULL, "malloc");
    for (uint32_t i = 0; i < POOL_MAX_RECORDS; i++)
        CHECK_OK(lifl_buf_alloc(pool, 1, &descs[i]));
    lifl_desc desc;
    CHECK_RC(lifl_buf_alloc(pool, 1, &desc), LIFL_E_NOMEM);
    CHECK(test_stats(pool).largest_free_bytes == 256 * MIB, "half the pool is still free");
    CHECK_OK(lifl_buf_release(pool, &descs[7]));
    CHECK_OK(lifl_buf_alloc(pool, 1, &desc));
    CHECK(desc.record == descs[7].record && desc.generation == descs[7].generation + 2u,
          "the freed record is reused with a new generation");
    descs[7] = desc;
    for (uint32_t i = 0; i < POOL_MAX_RECORDS; i++)
        CHECK_OK(lifl_buf_release(pool, &descs[i]));
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);
    test_check_allocator(name, NULL);
    free(descs);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

/*
 * 10,000 rounds of random allocations (1 B .. 4 MiB) and frees in an odd-sized pool (several top-level blocks),
 * the structures checked along the way; after freeing the rest, the same blocks as at the start.
 */
static void test_random_rounds(void)
{
    enum { ROUNDS = 10000, LIVE = 96 };
    const char *name = test_pool_name("random");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 64 * MIB + 3 * MIB + 12 * KIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    uint32_t initial_blocks[POOL_ORDERS];
    test_check_allocator(name, initial_blocks);

    lifl_desc live[LIVE];
    int count = 0;
    uint64_t random = 0x243f6a8885a308d3ull;
    uint64_t nomem = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int allocate = count == 0 || (count < LIVE && test_random(&random) % 100 < 55);
        if (allocate) {
            uint64_t length = test_random_length(&random, 4 * MIB);
            int rc = lifl_buf_alloc(pool, length, &live[count]);
            if (rc == LIFL_E_NOMEM) {
                nomem++;
                continue;
            }
            CHECK_OK(rc);
            live[count].tag = (uint64_t)round;
            test_fill(pool, &live[count]);
            count++;
        } else {
            int victim = (int)(test_random(&random) % (uint64_t)count);
            CHECK(test_verify(pool, &live[victim]), "round %d: buffer of round %llu was overwritten", round,
                  (unsigned long long)live[victim].tag);
            CHECK_OK(lifl_buf_release(pool, &live[victim]));
            live[victim] = live[--count];
        }
        if (round % 2000 == 0)
            test_check_allocator(name, NULL);
    }
    for (int i = 0; i < count; i++) {
        CHECK(test_verify(pool, &live[i]), "buffer of round %llu was overwritten", (unsigned long long)live[i].tag);
        CHECK_OK(lifl_buf_release(pool, &live[i]));
    }
    lifl_pool_stats now = test_stats(pool);
    CHECK_STATS_AT_BASELINE(now, base);
    uint32_t final_blocks[POOL_ORDERS];
    test_check_allocator(name, final_blocks);
    CHECK(memcmp(initial_blocks, final_blocks, sizeof initial_blocks) == 0, "fragmented after %d rounds", ROUNDS);
    printf("     %llu allocations, %llu refused for lack of space\n", (unsigned long long)now.allocations,
           (unsigned long long)nomem);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

/* Resident bytes count the pages written, not the blocks allocated, and a freed block keeps its pages. */
static void test_resident_bytes(void)
{
    const char *name = test_pool_name("resident");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 64 * MIB, &pool));
    lifl_pool_stats base = test_stats(pool);
    lifl_desc desc;
    CHECK_OK(lifl_buf_alloc(pool, 8 * MIB, &desc));
    lifl_pool_stats allocated = test_stats(pool);
    CHECK(allocated.resident_bytes < base.resident_bytes + 64 * KIB, "allocating wrote only metadata, yet resident grew from %llu to %llu",
          (unsigned long long)base.resident_bytes, (unsigned long long)allocated.resident_bytes);
    memset((uint8_t *)lifl_pool_data(pool) + desc.offset, 0x5a, 3 * MIB);
    lifl_pool_stats written = test_stats(pool);
    CHECK(written.resident_bytes >= allocated.resident_bytes + 3 * MIB && written.resident_bytes < allocated.resident_bytes + 4 * MIB,
          "3 MiB written of an 8 MiB block: resident %llu over %llu", (unsigned long long)written.resident_bytes,
          (unsigned long long)allocated.resident_bytes);
    /* Prefaulting for write allocates the rest of the block's pages at once, keeping what was written. */
    CHECK_OK(lifl_buf_prefault(pool, &desc, 1));
    lifl_pool_stats prefaulted = test_stats(pool);
    CHECK(prefaulted.resident_bytes >= allocated.resident_bytes + 8 * MIB, "prefaulted 8 MiB: resident %llu over %llu",
          (unsigned long long)prefaulted.resident_bytes, (unsigned long long)allocated.resident_bytes);
    const uint8_t *bytes = (const uint8_t *)lifl_pool_data(pool) + desc.offset;
    CHECK(bytes[0] == 0x5a && bytes[3 * MIB - 1] == 0x5a && bytes[3 * MIB] == 0, "prefaulting changed the bytes");
    CHECK_OK(lifl_buf_prefault(pool, &desc, 0));
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK(test_stats(pool).resident_bytes == prefaulted.resident_bytes, "a freed block keeps its pages");
    CHECK_RC(lifl_buf_prefault(pool, &desc, 0), LIFL_E_STALE);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

int main(void)
{
    test_begin();
    test_arguments();
    printf("ok   arguments\n");
    test_size_classes();
    printf("ok   size classes 1 B .. 1 GiB\n");
    test_pool_limits();
    printf("ok   pool limits\n");
    test_resident_bytes();
    printf("ok   resident bytes\n");
    test_fill_and_merge();
    printf("ok   fill and merge\n");
    test_record_exhaustion();
    printf("ok   record exhaustion\n");
    test_random_rounds();
    printf("ok   random rounds\n");
    test_cleanup();
    return 0;
}
