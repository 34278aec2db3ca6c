/*
 * Opening: processes racing to create the same pool all attach to one segment in distinct slots; a segment
 * with a foreign magic or layout version, or one whose creator never finished, is refused with LIFL_E_LAYOUT;
 * the 65th attachment gets LIFL_E_SLOTS.
 */
#include "test_support.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

struct racer {
    const char *name;
    int start[2];     /* closed by the parent: every racer wakes at once */
    int to_parent[2];
    int finish[2];    /* closed by the parent once it has every slot */
};

static int racing_child(void *argument)
{
    struct racer *racer = argument;
    close(racer->start[1]);
    close(racer->finish[1]);
    uint8_t ignored;
    CHECK(read(racer->start[0], &ignored, 1) == 0, "start signal");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(racer->name, 8 << 20, &pool));
    lifl_desc desc;
    CHECK_OK(lifl_buf_alloc(pool, 4096, &desc));
    test_fill(pool, &desc);
    CHECK(test_verify(pool, &desc), "own buffer");
    CHECK_OK(lifl_buf_release(pool, &desc));
    uint32_t slot = lifl_pool_slot(pool);
    test_write(racer->to_parent[1], &slot, sizeof slot);
    CHECK(read(racer->finish[0], &ignored, 1) == 0, "finish signal");
    lifl_pool_close(pool);
    return 0;
}

static void test_creation_race(void)
{
    enum { RACERS = 6 };
    struct racer racer = {test_pool_name("race"), {0, 0}, {0, 0}, {0, 0}};
    CHECK(pipe(racer.start) == 0 && pipe(racer.to_parent) == 0 && pipe(racer.finish) == 0, "pipe");
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++)
        pids[i] = test_fork(racing_child, &racer);
    close(racer.start[0]);
    close(racer.start[1]); /* go */
    uint64_t seen = 0;
    for (int i = 0; i < RACERS; i++) {
        uint32_t slot;
        test_read(racer.to_parent[0], &slot, sizeof slot);
        CHECK(slot < LIFL_MAX_PROCESSES && !(seen & (1ull << slot)), "slot %u taken twice", slot);
        seen |= 1ull << slot;
    }
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(racer.name, 1 << 20, &pool));
    lifl_pool_stats stats = test_stats(pool);
    CHECK(stats.attached_processes == RACERS + 1 && stats.capacity_bytes == 8 << 20 &&
              stats.allocations == RACERS && stats.frees == RACERS,
          "one pool: attached %u capacity %llu allocations %llu", stats.attached_processes,
          (unsigned long long)stats.capacity_bytes, (unsigned long long)stats.allocations);
    close(racer.finish[0]);
    close(racer.finish[1]);
    for (int i = 0; i < RACERS; i++)
        test_reap(pids[i], 0);
    CHECK(test_stats(pool).attached_processes == 1, "the racers detached");
    close(racer.to_parent[0]);
    close(racer.to_parent[1]);
    lifl_pool_close(pool);
    test_forget_pool(racer.name);
}

/* Writes a would-be segment of `size` bytes whose first page is `header`. */
static void write_segment(const char *name, const void *header, size_t header_size, size_t size)
{
    char path[160];
    snprintf(path, sizeof path, "/lifl.%s", name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "shm_open: %s", strerror(errno));
    CHECK(ftruncate(fd, (off_t)size) == 0, "ftruncate: %s", strerror(errno));
    CHECK(pwrite(fd, header, header_size, 0) == (ssize_t)header_size, "pwrite: %s", strerror(errno));
    close(fd);
}

static void test_layout_mismatch(void)
{
    const char *name = test_pool_name("layout");
    lifl_pool *pool;
    static uint8_t page[4096];

    /* Not ours at all. */
    memset(page, 0xa5, sizeof page);
    write_segment(name, page, sizeof page, 1 << 20);
    int64_t started = test_now_ms();
    CHECK_RC(lifl_pool_open(name, 1 << 20, &pool), LIFL_E_LAYOUT);
    CHECK(test_now_ms() - started < 1000, "a foreign magic is refused at once");

    /* Our magic, another layout version. */
    memset(page, 0, sizeof page);
    pool_header *h = (pool_header *)page;
    atomic_store(&h->magic, POOL_MAGIC);
    h->version = POOL_LAYOUT_VERSION + 1u;
    write_segment(name, page, sizeof page, 1 << 20);
    CHECK_RC(lifl_pool_open(name, 1 << 20, &pool), LIFL_E_LAYOUT);

    /* The right version but sizes that do not add up. */
    h->version = POOL_LAYOUT_VERSION;
    h->page_size = 4096;
    h->capacity = 1 << 20;
    write_segment(name, page, sizeof page, 1 << 20);
    CHECK_RC(lifl_pool_open(name, 1 << 20, &pool), LIFL_E_LAYOUT);

    /* Never initialized: the creator died before publishing the magic. Refused after the wait (~5 s). */
    memset(page, 0, sizeof page);
    write_segment(name, page, sizeof page, 1 << 20);
    started = test_now_ms();
    CHECK_RC(lifl_pool_open(name, 1 << 20, &pool), LIFL_E_LAYOUT);
    int64_t waited = test_now_ms() - started;
    CHECK(waited >= 4500 && waited < 15000, "waited %lld ms for the creator", (long long)waited);

    /* Once removed, the name is free for a proper pool. */
    CHECK_OK(lifl_pool_unlink(name));
    CHECK_OK(lifl_pool_open(name, 1 << 20, &pool));
    lifl_pool_close(pool);
    test_forget_pool(name);
}

static void test_slots_exhausted(void)
{
    const char *name = test_pool_name("slots");
    static lifl_pool *pools[LIFL_MAX_PROCESSES];
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LIFL_MAX_PROCESSES; i++) {
        CHECK_OK(lifl_pool_open(name, 1 << 20, &pools[i]));
        uint32_t slot = lifl_pool_slot(pools[i]);
        CHECK(!(seen & (1ull << slot)), "slot %u twice", slot);
        seen |= 1ull << slot;
    }
    CHECK(test_stats(pools[0]).attached_processes == LIFL_MAX_PROCESSES, "all attached");
    lifl_pool *one_more = NULL;
    CHECK_RC(lifl_pool_open(name, 1 << 20, &one_more), LIFL_E_SLOTS);
    CHECK(one_more == NULL, "no handle");
    uint32_t freed_slot = lifl_pool_slot(pools[17]);
    lifl_pool_close(pools[17]);
    CHECK_OK(lifl_pool_open(name, 1 << 20, &pools[17]));
    CHECK(lifl_pool_slot(pools[17]) == freed_slot, "the freed slot is taken again");
    for (uint32_t i = 0; i < LIFL_MAX_PROCESSES; i++)
        lifl_pool_close(pools[i]);
    test_forget_pool(name);
}

/*
 * A pool never promises more than /dev/shm has free: in a private mount namespace with a 32 MiB /dev/shm, a pool
 * asked for 1 GiB gets less than 32 MiB (the queues and records take 12 MiB of it), and every block it hands out
 * can be written (no SIGBUS). Needs root (unshare, mount); reported and left out without it.
 */
static int small_shm_child(void *argument)
{
    (void)argument;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=32m") != 0)
        return 77;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open("small-shm", 1ull << 30, &pool));
    lifl_pool_stats stats = test_stats(pool);
    CHECK(stats.capacity_bytes >= (1u << 20) && stats.capacity_bytes < (32u << 20), "capacity %llu in a 32 MiB /dev/shm",
          (unsigned long long)stats.capacity_bytes);
    lifl_desc desc;
    uint64_t written = 0;
    /* Every block the allocator hands out is backed: fill them all until the pool says it is full. */
    while (lifl_buf_alloc(pool, 64u << 10, &desc) == LIFL_OK) {
        memset((uint8_t *)lifl_pool_data(pool) + desc.offset, 0x5a, desc.length);
        written += desc.length;
    }
    CHECK(written >= stats.capacity_bytes / 2, "wrote %llu of %llu bytes", (unsigned long long)written,
          (unsigned long long)stats.capacity_bytes);
    lifl_pool_close(pool);
    lifl_pool_unlink("small-shm");
    return 0;
}

static int test_capacity_fits_shm(void)
{
    pid_t child = fork();
    CHECK(child >= 0, "fork: %s", strerror(errno));
    if (child == 0)
        _exit(small_shm_child(NULL));
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    CHECK(WIFEXITED(status), "the small-/dev/shm child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77, "the small-/dev/shm child exited with %d",
          WEXITSTATUS(status));
    return WEXITSTATUS(status) == 0;
}

int main(void)
{
    test_begin();
    test_creation_race();
    printf("ok   creation race\n");
    test_slots_exhausted();
    printf("ok   slots exhausted\n");
    test_layout_mismatch();
    printf("ok   layout mismatch\n");
    if (test_capacity_fits_shm())
        printf("ok   capacity cut to a small /dev/shm\n");
    else
        printf("--   capacity cut to a small /dev/shm: not run (needs root for a private mount namespace)\n");
    test_cleanup();
    return 0;
}
