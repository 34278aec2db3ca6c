/*
 * Concurrency: several processes with several threads each allocate, fill, addref, release and hand buffers to
 * each other (give + push onto the receiver's queue) for a few seconds. Every holder checks a buffer's contents
 * (a pattern derived from its record and generation) before dropping it, so a block handed out twice or freed
 * early shows up. Afterwards the pool is exactly as it started.
 */
#include "test_support.h"

#include <pthread.h>
#include <sched.h>

#define PROCESSES 4
#define THREADS 2
#define WORKERS (PROCESSES * THREADS)
#define HELD 48
#define RUN_MS 3000
#define MAX_LENGTH (256u << 10)

struct control {
    _Atomic int stop;
    _Atomic int ready;
    _Atomic int finished; /* workers that will push no more */
    _Atomic uint32_t slots[PROCESSES];
    _Atomic uint64_t pushed[LIFL_MAX_PROCESSES];
    _Atomic uint64_t operations;
    _Atomic uint64_t handed;
};

static struct control *control;
static const char *pool_name;

struct worker {
    lifl_pool *pool;
    uint32_t process;
    uint32_t thread;
    uint64_t random;
    lifl_desc held[HELD];
    int count;
    uint64_t popped; /* consumer thread only */
};

static void release_checked(struct worker *worker, const lifl_desc *desc)
{
    CHECK(test_verify(worker->pool, desc), "process %u: buffer %u/%u (%llu bytes) was overwritten", worker->process,
          desc->record, desc->generation, (unsigned long long)desc->length);
    CHECK_OK(lifl_buf_release(worker->pool, desc));
}

static void drop(struct worker *worker, int index)
{
    release_checked(worker, &worker->held[index]);
    worker->held[index] = worker->held[--worker->count];
}

/* The process's consumer takes what others handed it: keeps it if there is room, else drops it. */
static void take_deliveries(struct worker *worker)
{
    lifl_desc desc;
    int rc;
    while ((rc = lifl_queue_pop(worker->pool, &desc)) == LIFL_OK) {
        worker->popped++;
        uint32_t total = 0;
        CHECK_OK(lifl_buf_refcount(worker->pool, &desc, &total));
        CHECK(total >= 1, "a delivered buffer is held");
        if (worker->count == HELD)
            drop(worker, (int)(test_random(&worker->random) % HELD));
        worker->held[worker->count++] = desc;
    }
    CHECK_RC(rc, LIFL_E_EMPTY);
}

static void hand_over(struct worker *worker, int index)
{
    uint32_t target_process = (worker->process + 1u + (uint32_t)(test_random(&worker->random) % (PROCESSES - 1))) %
                              PROCESSES;
    uint32_t target = atomic_load(&control->slots[target_process]);
    /* Out of the array first: taking deliveries below may reorder it. */
    lifl_desc desc = worker->held[index];
    worker->held[index] = worker->held[--worker->count];
    CHECK(test_verify(worker->pool, &desc), "buffer overwritten before hand-over");
    CHECK_OK(lifl_buf_give(worker->pool, &desc, target));
    int rc;
    while ((rc = lifl_queue_push(worker->pool, target, &desc)) == LIFL_E_FULL) {
        if (worker->thread == 0)
            take_deliveries(worker); /* two consumers pushing to each other's full queues must not deadlock */
        sched_yield();
    }
    CHECK_OK(rc);
    atomic_fetch_add(&control->pushed[target], 1);
    atomic_fetch_add(&control->handed, 1);
    release_checked(worker, &desc);
}

static void *work(void *argument)
{
    struct worker *worker = argument;
    uint64_t operations = 0;
    while (atomic_load(&control->ready) < PROCESSES)
        sched_yield();
    while (!atomic_load(&control->stop)) {
        if (worker->thread == 0)
            take_deliveries(worker);
        uint32_t choice = (uint32_t)(test_random(&worker->random) % 100);
        int index = worker->count ? (int)(test_random(&worker->random) % (uint64_t)worker->count) : -1;
        if (choice < 35 || index < 0) {
            if (worker->count == HELD)
                continue;
            lifl_desc desc;
            int rc = lifl_buf_alloc(worker->pool, test_random_length(&worker->random, MAX_LENGTH), &desc);
            if (rc == LIFL_E_NOMEM)
                continue;
            CHECK_OK(rc);
            test_fill(worker->pool, &desc);
            worker->held[worker->count++] = desc;
        } else if (choice < 50) {
            if (worker->count == HELD)
                continue;
            CHECK_OK(lifl_buf_addref(worker->pool, &worker->held[index]));
            worker->held[worker->count++] = worker->held[index];
        } else if (choice < 80) {
            drop(worker, index);
        } else {
            hand_over(worker, index);
        }
        operations++;
    }
    while (worker->count > 0)
        drop(worker, worker->count - 1);
    atomic_fetch_add(&control->finished, 1);
    if (worker->thread == 0) {
        /* Everything pushed to this process is taken, once every worker has stopped pushing. */
        uint32_t slot = lifl_pool_slot(worker->pool);
        for (;;) {
            take_deliveries(worker);
            while (worker->count > 0)
                drop(worker, worker->count - 1);
            if (atomic_load(&control->finished) == WORKERS && worker->popped == atomic_load(&control->pushed[slot]))
                break;
            sched_yield();
        }
    }
    atomic_fetch_add(&control->operations, operations);
    return NULL;
}

/* One process: its own handle, THREADS workers. */
static int run_process(uint32_t process)
{
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(pool_name, 256 << 20, &pool));
    atomic_store(&control->slots[process], lifl_pool_slot(pool));
    atomic_fetch_add(&control->ready, 1);
    static struct worker workers[THREADS];
    pthread_t threads[THREADS];
    for (uint32_t thread = 0; thread < THREADS; thread++) {
        workers[thread] = (struct worker){pool, process, thread, 0x853c49e6748fea9bull * (process * THREADS + thread + 1),
                                          {{0, 0, 0, 0, 0}}, 0, 0};
        CHECK(pthread_create(&threads[thread], NULL, work, &workers[thread]) == 0, "pthread_create");
    }
    for (uint32_t thread = 0; thread < THREADS; thread++)
        CHECK(pthread_join(threads[thread], NULL) == 0, "pthread_join");
    lifl_desc left;
    CHECK_RC(lifl_queue_pop(pool, &left), LIFL_E_EMPTY);
    lifl_pool_close(pool);
    return 0;
}

static int child_process(void *argument)
{
    return run_process((uint32_t)(uintptr_t)argument);
}

static void *stopper(void *argument)
{
    (void)argument;
    while (atomic_load(&control->ready) < PROCESSES)
        sched_yield();
    test_sleep_ms(RUN_MS);
    atomic_store(&control->stop, 1);
    return NULL;
}

int main(void)
{
    test_begin();
    pool_name = test_pool_name("stress");
    control = mmap(NULL, sizeof *control, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(control != MAP_FAILED, "mmap: %s", strerror(errno));
    memset(control, 0, sizeof *control);

    lifl_pool *observer;
    CHECK_OK(lifl_pool_open(pool_name, 256 << 20, &observer));
    lifl_pool_stats base = test_stats(observer);
    uint32_t initial_blocks[POOL_ORDERS];
    test_check_allocator(pool_name, initial_blocks);

    pid_t children[PROCESSES - 1];
    for (uint32_t process = 1; process < PROCESSES; process++)
        children[process - 1] = test_fork(child_process, (void *)(uintptr_t)process);
    pthread_t stop_thread;
    CHECK(pthread_create(&stop_thread, NULL, stopper, NULL) == 0, "pthread_create");
    CHECK(run_process(0) == 0, "the parent's workers");
    CHECK(pthread_join(stop_thread, NULL) == 0, "pthread_join");
    for (uint32_t process = 1; process < PROCESSES; process++)
        test_reap(children[process - 1], 0);

    lifl_pool_stats now = test_stats(observer);
    CHECK_STATS_AT_BASELINE(now, base);
    CHECK(now.recovered_buffers == 0 && now.attached_processes == 1, "orderly: recovered %llu, attached %u",
          (unsigned long long)now.recovered_buffers, now.attached_processes);
    uint32_t final_blocks[POOL_ORDERS];
    test_check_allocator(pool_name, final_blocks);
    CHECK(memcmp(initial_blocks, final_blocks, sizeof initial_blocks) == 0, "blocks merged back");
    printf("ok   %d processes x %d threads for %d ms: %llu operations, %llu allocations, %llu hand-overs\n", PROCESSES,
           THREADS, RUN_MS, (unsigned long long)atomic_load(&control->operations),
           (unsigned long long)(now.allocations - base.allocations),
           (unsigned long long)atomic_load(&control->handed));
    lifl_pool_close(observer);
    test_cleanup();
    return 0;
}
