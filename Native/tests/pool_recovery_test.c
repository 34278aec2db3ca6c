/*
 * Reclaiming what dead processes held: children that exit without closing, are killed with SIGKILL (reaped or
 * left as zombies) lose exactly their references, buffers they gave away survive, live processes are left
 * alone; a reused pid is told apart by its start time; and a process that dies holding the pool's mutex leaves
 * an allocator that the next locker rebuilds from the records.
 */
#include "test_support.h"

#define BUFFERS_PER_CHILD 5

enum child_end { END_EXIT, END_KILL_REAP, END_KILL_ZOMBIE, END_STAY };

struct holder {
    const char *name;
    uint32_t parent_slot;
    enum child_end end;
    int to_child[2];
    int to_parent[2];
};

struct holder_report {
    uint32_t slot;
    lifl_desc given; /* to the parent */
};

/* Allocates and fills BUFFERS_PER_CHILD buffers (one with two references), gives the first to the parent, then
 * ends as told. */
static int holder_child(void *argument)
{
    struct holder *holder = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(holder->name, 64 << 20, &pool));
    lifl_desc descs[BUFFERS_PER_CHILD];
    uint64_t random = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    for (int i = 0; i < BUFFERS_PER_CHILD; i++) {
        CHECK_OK(lifl_buf_alloc(pool, test_random_length(&random, 1 << 20), &descs[i]));
        test_fill(pool, &descs[i]);
    }
    CHECK_OK(lifl_buf_addref(pool, &descs[1]));
    CHECK_OK(lifl_buf_give(pool, &descs[0], holder->parent_slot));
    struct holder_report report = {lifl_pool_slot(pool), descs[0]};
    test_write(holder->to_parent[1], &report, sizeof report);
    uint8_t command;
    test_read(holder->to_child[0], &command, sizeof command); /* killed here, or told to end */
    if (holder->end == END_EXIT)
        _exit(0); /* without lifl_pool_close */
    for (int i = 0; i < BUFFERS_PER_CHILD; i++) {
        CHECK(test_verify(pool, &descs[i]), "buffer %d of a live child was touched", i);
        CHECK_OK(lifl_buf_release(pool, &descs[i]));
    }
    CHECK_OK(lifl_buf_release(pool, &descs[1]));
    lifl_pool_close(pool);
    return 0;
}

static void test_dead_children(void)
{
    enum { CHILDREN = 4 };
    static const enum child_end ends[CHILDREN] = {END_EXIT, END_KILL_REAP, END_KILL_ZOMBIE, END_STAY};
    const char *name = test_pool_name("dead");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 64 << 20, &pool));
    lifl_pool_stats base = test_stats(pool);
    uint32_t initial_blocks[POOL_ORDERS];
    test_check_allocator(name, initial_blocks);

    struct holder holders[CHILDREN];
    pid_t pids[CHILDREN];
    struct holder_report reports[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        holders[i] = (struct holder){name, lifl_pool_slot(pool), ends[i], {0, 0}, {0, 0}};
        CHECK(pipe(holders[i].to_child) == 0 && pipe(holders[i].to_parent) == 0, "pipe");
        pids[i] = test_fork(holder_child, &holders[i]);
        test_read(holders[i].to_parent[0], &reports[i], sizeof reports[i]);
    }
    lifl_pool_stats loaded = test_stats(pool);
    CHECK(loaded.live_buffers == CHILDREN * BUFFERS_PER_CHILD, "live %llu", (unsigned long long)loaded.live_buffers);

    uint8_t command = 1;
    test_write(holders[0].to_child[1], &command, sizeof command);
    test_reap(pids[0], 0);
    kill(pids[1], SIGKILL);
    test_reap(pids[1], SIGKILL);
    kill(pids[2], SIGKILL);
    /* Child 2 stays a zombie until after the recovery: it still has its pid, but it is dead. */
    for (int spins = 0; spins < 5000; spins++) {
        char path[64], text[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[2]);
        FILE *file = fopen(path, "r");
        CHECK(file != NULL, "the zombie's /proc entry");
        size_t length = fread(text, 1, sizeof text - 1, file);
        fclose(file);
        text[length] = '\0';
        char *state = strrchr(text, ')');
        if (state && state[2] == 'Z')
            break;
        test_sleep_ms(1);
    }

    uint64_t freed = 0;
    CHECK_OK(lifl_pool_recover(pool, &freed));
    CHECK(freed == 3 * (BUFFERS_PER_CHILD - 1), "recovered %llu buffers, expected %d", (unsigned long long)freed,
          3 * (BUFFERS_PER_CHILD - 1));
    lifl_pool_stats now = test_stats(pool);
    CHECK(now.recovered_processes == 3 && now.recovered_buffers == freed, "recovered %llu processes, %llu buffers",
          (unsigned long long)now.recovered_processes, (unsigned long long)now.recovered_buffers);
    CHECK(now.live_buffers == 3 + BUFFERS_PER_CHILD, "the gifts and the live child's buffers remain: %llu",
          (unsigned long long)now.live_buffers);
    CHECK(now.attached_processes == 2, "attached %u", now.attached_processes);
    for (int i = 0; i < 3; i++)
        CHECK(lifl_pool_slot_alive(pool, reports[i].slot) == 0, "dead child %d's slot", i);
    CHECK(lifl_pool_slot_alive(pool, reports[3].slot) == 1, "the live child's slot");
    test_check_allocator(name, NULL);

    /* A second recovery finds nothing. */
    CHECK_OK(lifl_pool_recover(pool, &freed));
    CHECK(freed == 0, "nothing more to recover, got %llu", (unsigned long long)freed);
    test_reap(pids[2], SIGKILL);

    /* What the dead gave away is intact and the parent's alone. */
    for (int i = 0; i < CHILDREN; i++) {
        uint32_t total = 0;
        CHECK_OK(lifl_buf_refcount(pool, &reports[i].given, &total));
        CHECK(total == (i < 3 ? 1u : 2u), "gift %d: %u references", i, total);
        CHECK(test_verify(pool, &reports[i].given), "gift %d was overwritten", i);
        CHECK_OK(lifl_buf_release(pool, &reports[i].given));
    }

    test_write(holders[3].to_child[1], &command, sizeof command);
    test_reap(pids[3], 0);
    now = test_stats(pool);
    CHECK_STATS_AT_BASELINE(now, base);
    CHECK(now.attached_processes == 1, "only the parent is attached");
    uint32_t final_blocks[POOL_ORDERS];
    test_check_allocator(name, final_blocks);
    CHECK(memcmp(initial_blocks, final_blocks, sizeof initial_blocks) == 0, "blocks merged back");

    /* Freed slots are taken again. */
    lifl_pool *again;
    CHECK_OK(lifl_pool_open(name, 64 << 20, &again));
    CHECK(test_stats(again).attached_processes == 2, "re-attached");
    lifl_pool_close(again);
    for (int i = 0; i < CHILDREN; i++)
        for (int end = 0; end < 2; end++) {
            close(holders[i].to_child[end]);
            close(holders[i].to_parent[end]);
        }
    lifl_pool_close(pool);
    test_forget_pool(name);
}

struct exiting {
    const char *name;
    int to_parent[2];
};

static int exiting_child(void *argument)
{
    struct exiting *exiting = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(exiting->name, 8 << 20, &pool));
    lifl_desc descs[2];
    CHECK_OK(lifl_buf_alloc(pool, 1000, &descs[0]));
    CHECK_OK(lifl_buf_alloc(pool, 70000, &descs[1]));
    uint32_t slot = lifl_pool_slot(pool);
    test_write(exiting->to_parent[1], &slot, sizeof slot);
    _exit(0);
}

/* A slot whose pid now belongs to another process (here: the parent) is dead when the start time differs. */
static void test_pid_reuse(void)
{
    struct exiting exiting = {test_pool_name("reuse"), {0, 0}};
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(exiting.name, 8 << 20, &pool));
    lifl_pool_stats base = test_stats(pool);
    CHECK(pipe(exiting.to_parent) == 0, "pipe");
    pid_t child = test_fork(exiting_child, &exiting);
    uint32_t slot;
    test_read(exiting.to_parent[0], &slot, sizeof slot);
    test_reap(child, 0);

    test_segment segment = test_segment_map(exiting.name);
    pool_slot *dead = test_segment_slot(&segment, slot);
    pool_slot *mine = test_segment_slot(&segment, lifl_pool_slot(pool));
    uint64_t my_start = atomic_load(&mine->start_time);
    CHECK(my_start != 0, "the start time was recorded");

    /* The same pid and start time as a running process: alive, untouched. */
    atomic_store(&dead->pid, (int32_t)getpid());
    atomic_store(&dead->start_time, my_start);
    uint64_t freed = 0;
    CHECK_OK(lifl_pool_recover(pool, &freed));
    CHECK(freed == 0 && lifl_pool_slot_alive(pool, slot) == 1, "a running process's slot is left alone");

    /* The pid of a running process, but another start time: the pid was reused, the slot's owner is gone. */
    atomic_store(&dead->start_time, my_start + 1);
    CHECK(lifl_pool_slot_alive(pool, slot) == 0, "reused pid detected");
    CHECK_OK(lifl_pool_recover(pool, &freed));
    CHECK(freed == 2, "recovered %llu", (unsigned long long)freed);
    CHECK_STATS_AT_BASELINE(test_stats(pool), base);
    test_segment_unmap(&segment);
    close(exiting.to_parent[0]);
    close(exiting.to_parent[1]);
    lifl_pool_close(pool);
    test_forget_pool(exiting.name);
}

struct locker {
    const char *name;
    uint32_t parent_slot;
    int to_parent[2];
};

/*
 * Holds buffers (gives one to the parent), then takes the pool's mutex behind the library's back, leaves the
 * allocator in pieces (free lists emptied, statistics wrong, a record taken but never published) and exits
 * holding the mutex.
 */
static int locking_child(void *argument)
{
    struct locker *locker = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(locker->name, 16 << 20, &pool));
    lifl_desc descs[4];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(lifl_buf_alloc(pool, (uint64_t)(i + 1) * 40000, &descs[i]));
        test_fill(pool, &descs[i]);
    }
    CHECK_OK(lifl_buf_give(pool, &descs[0], locker->parent_slot));
    uint32_t slot = lifl_pool_slot(pool);

    test_segment segment = test_segment_map(locker->name);
    pool_header *h = segment.header;
    CHECK(pthread_mutex_lock(&h->mutex) == 0, "lock");
    for (uint32_t order = 0; order < POOL_ORDERS; order++) {
        h->free_head[order] = POOL_NONE;
        h->free_blocks[order] = 0;
    }
    h->used_bytes = 12345;
    h->live_buffers = 999;
    pool_record *records = (pool_record *)(segment.base + h->records_offset);
    uint32_t half_taken = h->record_high_water++;
    atomic_store(&records[half_taken].refs[slot], 1);
    test_write(locker->to_parent[1], &descs[0], sizeof descs[0]);
    test_write(locker->to_parent[1], &half_taken, sizeof half_taken);
    _exit(0);
}

static void test_owner_died(void)
{
    struct locker locker = {test_pool_name("ownerdead"), 0, {0, 0}};
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(locker.name, 16 << 20, &pool));
    locker.parent_slot = lifl_pool_slot(pool);
    lifl_pool_stats base = test_stats(pool);
    uint32_t initial_blocks[POOL_ORDERS];
    test_check_allocator(locker.name, initial_blocks);
    lifl_desc mine[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(lifl_buf_alloc(pool, (uint64_t)(i + 1) * 100000, &mine[i]));
        test_fill(pool, &mine[i]);
    }

    CHECK(pipe(locker.to_parent) == 0, "pipe");
    pid_t child = test_fork(locking_child, &locker);
    lifl_desc gift;
    uint32_t half_taken;
    test_read(locker.to_parent[0], &gift, sizeof gift);
    test_read(locker.to_parent[0], &half_taken, sizeof half_taken);
    test_reap(child, 0);

    /* The next lock sees EOWNERDEAD: rebuild, recover the child, then the allocation proceeds. */
    lifl_desc fresh;
    CHECK_OK(lifl_buf_alloc(pool, 5000, &fresh));
    test_fill(pool, &fresh);
    lifl_pool_stats now = test_stats(pool);
    CHECK(now.live_buffers == 5, "mine 3 + gift + fresh, not %llu", (unsigned long long)now.live_buffers);
    CHECK(now.recovered_processes == 1 && now.recovered_buffers == 3, "recovered %llu processes %llu buffers",
          (unsigned long long)now.recovered_processes, (unsigned long long)now.recovered_buffers);
    CHECK(now.attached_processes == 1, "the child's slot is free");
    test_check_allocator(locker.name, NULL);
    test_segment segment = test_segment_map(locker.name);
    CHECK(segment.header->rebuilds == 1, "rebuilt once, not %llu", (unsigned long long)segment.header->rebuilds);
    pool_record *records = (pool_record *)(segment.base + segment.header->records_offset);
    for (uint32_t slot = 0; slot < LIFL_MAX_PROCESSES; slot++)
        CHECK(atomic_load(&records[half_taken].refs[slot]) == 0, "the half-taken record's counts were cleared");
    test_segment_unmap(&segment);

    CHECK(test_verify(pool, &gift), "the gift survived");
    CHECK_OK(lifl_buf_release(pool, &gift));
    CHECK(test_verify(pool, &fresh), "the new buffer");
    CHECK_OK(lifl_buf_release(pool, &fresh));
    for (int i = 0; i < 3; i++) {
        CHECK(test_verify(pool, &mine[i]), "buffer %d survived the rebuild", i);
        CHECK_OK(lifl_buf_release(pool, &mine[i]));
    }
    now = test_stats(pool);
    CHECK(now.used_bytes == base.used_bytes && now.live_buffers == 0 && now.requested_bytes == 0 &&
              now.largest_free_bytes == base.largest_free_bytes,
          "back to empty");
    uint32_t final_blocks[POOL_ORDERS];
    test_check_allocator(locker.name, final_blocks);
    CHECK(memcmp(initial_blocks, final_blocks, sizeof initial_blocks) == 0, "blocks merged back after rebuild");
    close(locker.to_parent[0]);
    close(locker.to_parent[1]);
    lifl_pool_close(pool);
    test_forget_pool(locker.name);
}

/* Every process of a pool was killed: nobody closed it, so it stays until removed; removal refuses while any
 * live process is attached, and reclaims the dead first. */
static void test_remove_when_everyone_died(void)
{
    const char *name = test_pool_name("orphan");
    struct holder holder = {name, 0, END_KILL_REAP, {0, 0}, {0, 0}};
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 64 << 20, &pool));
    holder.parent_slot = lifl_pool_slot(pool);
    CHECK(pipe(holder.to_child) == 0 && pipe(holder.to_parent) == 0, "pipe");
    pid_t child = test_fork(holder_child, &holder);
    struct holder_report report;
    test_read(holder.to_parent[0], &report, sizeof report);

    int removed = -1;
    CHECK_OK(lifl_pool_remove_if_unused(name, &removed));
    CHECK(removed == 0, "removed while two processes are attached");
    lifl_desc gift = report.given;
    CHECK_OK(lifl_buf_release(pool, &gift));
    /* The child is still attached: this close leaves the pool in place. */
    lifl_pool_close(pool);
    kill(child, SIGKILL);
    test_reap(child, SIGKILL);

    CHECK_OK(lifl_pool_remove_if_unused(name, &removed));
    CHECK(removed == 1, "the pool of dead processes was not removed");
    CHECK_RC(lifl_pool_unlink(name), LIFL_E_SYS);
    CHECK(errno == ENOENT, "errno %d", errno);
    CHECK_OK(lifl_pool_remove_if_unused(name, &removed));
    CHECK(removed == 0, "a missing pool is not removed twice");
    CHECK_RC(lifl_pool_remove_if_unused("bad/name", &removed), LIFL_E_INVAL);
    test_forget_pool(name);
}

int main(void)
{
    test_begin();
    test_dead_children();
    printf("ok   dead children\n");
    test_pid_reuse();
    printf("ok   pid reuse\n");
    test_owner_died();
    printf("ok   owner died holding the mutex\n");
    test_remove_when_everyone_died();
    printf("ok   a pool whose processes all died is removed\n");
    test_cleanup();
    return 0;
}
