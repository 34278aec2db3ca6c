/*
 * Reference semantics: alloc/addref/release, giving a reference to another slot (a second handle of this process
 * and a forked process), LIFL_E_NOTHELD for a slot that holds nothing, LIFL_E_NOSLOT and LIFL_E_INVAL for bad
 * targets, LIFL_E_STALE for freed, reused and forged descriptors, and close dropping what a handle held.
 */
#include "test_support.h"

static uint32_t refcount_of(lifl_pool *pool, const lifl_desc *desc)
{
    uint32_t total = 0;
    CHECK_OK(lifl_buf_refcount(pool, desc, &total));
    return total;
}

/* One process: the counts follow addref and release, and the last release frees. */
static void test_addref_release(void)
{
    const char *name = test_pool_name("addref");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 4 << 20, &pool));
    lifl_pool_stats base = test_stats(pool);
    lifl_desc desc;
    CHECK_OK(lifl_buf_alloc(pool, 10000, &desc));
    CHECK(refcount_of(pool, &desc) == 1, "after alloc");
    CHECK_OK(lifl_buf_addref(pool, &desc));
    CHECK_OK(lifl_buf_addref(pool, &desc));
    CHECK(refcount_of(pool, &desc) == 3, "after two addrefs");
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK(refcount_of(pool, &desc) == 1, "after two releases");
    CHECK(test_stats(pool).live_buffers == 1, "still live");
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);

    /* Gone: every operation on the old descriptor says so. */
    uint32_t total;
    CHECK_RC(lifl_buf_refcount(pool, &desc, &total), LIFL_E_STALE);
    CHECK_RC(lifl_buf_release(pool, &desc), LIFL_E_STALE);
    CHECK_RC(lifl_buf_addref(pool, &desc), LIFL_E_STALE);
    CHECK_RC(lifl_buf_give(pool, &desc, lifl_pool_slot(pool)), LIFL_E_STALE);

    /* The record comes back with a new generation; the old descriptor stays stale. */
    lifl_desc again;
    CHECK_OK(lifl_buf_alloc(pool, 10000, &again));
    CHECK(again.record == desc.record && again.generation != desc.generation, "record reused, new generation");
    CHECK_RC(lifl_buf_addref(pool, &desc), LIFL_E_STALE);
    CHECK_RC(lifl_buf_release(pool, &desc), LIFL_E_STALE);
    CHECK(refcount_of(pool, &again) == 1, "the new buffer is untouched by the stale calls");

    /* Forged descriptors: wrong offset, wrong length, record out of range, an even (free) generation. */
    lifl_desc forged = again;
    forged.offset += 4096;
    CHECK_RC(lifl_buf_refcount(pool, &forged, &total), LIFL_E_STALE);
    forged = again;
    forged.length++;
    CHECK_RC(lifl_buf_addref(pool, &forged), LIFL_E_STALE);
    forged = again;
    forged.record = UINT32_MAX;
    CHECK_RC(lifl_buf_release(pool, &forged), LIFL_E_STALE);
    forged = again;
    forged.generation++;
    CHECK_RC(lifl_buf_release(pool, &forged), LIFL_E_STALE);
    CHECK_RC(lifl_buf_refcount(pool, &again, NULL), LIFL_E_INVAL);
    CHECK_RC(lifl_buf_addref(pool, NULL), LIFL_E_INVAL);

    CHECK_OK(lifl_buf_release(pool, &again));
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

/* Two handles (two slots) in one process: give, NOTHELD, NOSLOT, INVAL, and close dropping references. */
static void test_give_between_slots(void)
{
    const char *name = test_pool_name("give");
    lifl_pool *a, *b;
    CHECK_OK(lifl_pool_open(name, 4 << 20, &a));
    CHECK_OK(lifl_pool_open(name, 4 << 20, &b));
    uint32_t slot_a = lifl_pool_slot(a), slot_b = lifl_pool_slot(b);
    CHECK(slot_a != slot_b && slot_a < LIFL_MAX_PROCESSES && slot_b < LIFL_MAX_PROCESSES, "slots %u %u", slot_a,
          slot_b);
    CHECK(test_stats(a).attached_processes == 2, "two attached");
    CHECK(lifl_pool_slot_alive(a, slot_b) == 1 && lifl_pool_slot_alive(b, slot_a) == 1, "both alive");
    lifl_pool_stats base = test_stats(a);

    lifl_desc desc;
    CHECK_OK(lifl_buf_alloc(a, 5000, &desc));
    /* b holds nothing: it can neither release nor give. */
    CHECK_RC(lifl_buf_release(b, &desc), LIFL_E_NOTHELD);
    CHECK_RC(lifl_buf_give(b, &desc, slot_a), LIFL_E_NOTHELD);
    CHECK(refcount_of(a, &desc) == 1, "unchanged by refused calls");

    /* Bad targets. */
    uint32_t free_slot = 0;
    while (free_slot == slot_a || free_slot == slot_b)
        free_slot++;
    CHECK(lifl_pool_slot_alive(a, free_slot) == 0, "slot %u is free", free_slot);
    CHECK_RC(lifl_pool_slot_alive(a, LIFL_MAX_PROCESSES), LIFL_E_INVAL);
    CHECK_RC(lifl_buf_give(a, &desc, free_slot), LIFL_E_NOSLOT);
    CHECK_RC(lifl_buf_give(a, &desc, LIFL_MAX_PROCESSES), LIFL_E_INVAL);
    CHECK(refcount_of(a, &desc) == 1, "unchanged by refused gives");

    /* a gives b one, then drops its own: b's keeps the buffer alive. */
    CHECK_OK(lifl_buf_give(a, &desc, slot_b));
    CHECK(refcount_of(a, &desc) == 2, "after give");
    CHECK_OK(lifl_buf_release(a, &desc));
    CHECK_RC(lifl_buf_release(a, &desc), LIFL_E_NOTHELD);
    CHECK(refcount_of(b, &desc) == 1, "b's reference");
    /* b can hand it on, back to a. */
    CHECK_OK(lifl_buf_give(b, &desc, slot_a));
    CHECK_OK(lifl_buf_release(b, &desc));
    CHECK(refcount_of(a, &desc) == 1, "a's again");
    CHECK_OK(lifl_buf_release(a, &desc));
    CHECK_STATS_AT_BASELINE(test_stats(a), base);

    /* Closing b drops what it held: one buffer only b held (freed) and one both held (kept). */
    lifl_desc only_b, shared;
    CHECK_OK(lifl_buf_alloc(a, 100, &only_b));
    CHECK_OK(lifl_buf_alloc(a, 100, &shared));
    CHECK_OK(lifl_buf_give(a, &only_b, slot_b));
    CHECK_OK(lifl_buf_give(a, &shared, slot_b));
    CHECK_OK(lifl_buf_addref(b, &shared)); /* b holds two of this one */
    CHECK_OK(lifl_buf_release(a, &only_b));
    CHECK(refcount_of(a, &shared) == 3, "shared: a 1, b 2");
    lifl_pool_close(b);
    CHECK(refcount_of(a, &shared) == 1, "b's two references dropped at close");
    uint32_t total;
    CHECK_RC(lifl_buf_refcount(a, &only_b, &total), LIFL_E_STALE);
    lifl_pool_stats after_close = test_stats(a);
    CHECK(after_close.attached_processes == 1, "b detached");
    CHECK(after_close.recovered_buffers == 0 && after_close.recovered_processes == 0, "close is not a recovery");
    CHECK(lifl_pool_slot_alive(a, slot_b) == 0, "b's slot is free");
    CHECK_RC(lifl_buf_give(a, &shared, slot_b), LIFL_E_NOSLOT);
    CHECK_OK(lifl_buf_release(a, &shared));
    CHECK_STATS_AT_BASELINE(test_stats(a), base);
    lifl_pool_close(a);
    test_forget_pool(name);
}

struct child_pipes {
    const char *name;
    int to_child[2];
    int to_parent[2];
};

/* The receiving process: reports its slot, takes the buffer it was given, checks its contents, releases it. */
static int receiving_child(void *argument)
{
    struct child_pipes *pipes = argument;
    lifl_pool *pool;
    CHECK_RC(lifl_pool_open(pipes->name, 0, &pool), LIFL_E_INVAL); /* a capacity is checked even to attach */
    CHECK_OK(lifl_pool_open(pipes->name, 1 << 20, &pool));            /* an existing pool keeps its own */
    CHECK(lifl_pool_capacity(pool) == 4 << 20, "the existing capacity");
    uint32_t slot = lifl_pool_slot(pool);
    test_write(pipes->to_parent[1], &slot, sizeof slot);
    lifl_desc desc;
    test_read(pipes->to_child[0], &desc, sizeof desc);
    CHECK(refcount_of(pool, &desc) == 1, "only the child's reference is left");
    CHECK(test_verify(pool, &desc), "the child sees what the parent wrote");
    CHECK_RC(lifl_buf_give(pool, &desc, slot), LIFL_OK); /* giving to oneself is an addref */
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK_OK(lifl_buf_release(pool, &desc));
    CHECK_RC(lifl_buf_release(pool, &desc), LIFL_E_STALE);
    uint8_t done = 1;
    test_write(pipes->to_parent[1], &done, sizeof done);
    lifl_pool_close(pool);
    return 0;
}

/* A buffer handed to another process outlives the giver's reference and is freed by the receiver. */
static void test_give_to_process(void)
{
    struct child_pipes pipes = {test_pool_name("process"), {0, 0}, {0, 0}};
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(pipes.name, 4 << 20, &pool));
    lifl_pool_stats base = test_stats(pool);
    CHECK(pipe(pipes.to_child) == 0 && pipe(pipes.to_parent) == 0, "pipe");
    pid_t child = test_fork(receiving_child, &pipes);
    uint32_t child_slot;
    test_read(pipes.to_parent[0], &child_slot, sizeof child_slot);
    CHECK(child_slot != lifl_pool_slot(pool), "the child has its own slot");
    CHECK(lifl_pool_slot_alive(pool, child_slot) == 1, "the child is alive");

    lifl_desc desc;
    CHECK_OK(lifl_buf_alloc(pool, 300000, &desc));
    test_fill(pool, &desc);
    CHECK_OK(lifl_buf_give(pool, &desc, child_slot));
    CHECK_OK(lifl_buf_release(pool, &desc));
    test_write(pipes.to_child[1], &desc, sizeof desc);
    uint8_t done;
    test_read(pipes.to_parent[0], &done, sizeof done);
    test_reap(child, 0);
    uint32_t total;
    CHECK_RC(lifl_buf_refcount(pool, &desc, &total), LIFL_E_STALE);
    CHECK(lifl_pool_slot_alive(pool, child_slot) == 0, "the child detached");
    lifl_pool_stats now = test_stats(pool);
    CHECK_STATS_AT_BASELINE(now, base);
    CHECK(now.recovered_buffers == 0, "nothing was recovered");
    for (int i = 0; i < 2; i++) {
        close(pipes.to_child[i]);
        close(pipes.to_parent[i]);
    }
    lifl_pool_close(pool);
    test_forget_pool(pipes.name);
}

int main(void)
{
    test_begin();
    test_addref_release();
    printf("ok   addref and release\n");
    test_give_between_slots();
    printf("ok   give between slots\n");
    test_give_to_process();
    printf("ok   give to another process\n");
    test_cleanup();
    return 0;
}
