/*
 * What the pool and queue tests share: failing loudly (a message, the pool's name removed, exit 1, also from
 * forked children), unique pool names, and a look inside the segment (pool_layout.h) to check the allocator's
 * structures directly.
 */
#ifndef LIFL_TEST_SUPPORT_H
#define LIFL_TEST_SUPPORT_H

#include "lifl_native.h"
#include "pool_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_MAX_NAMES 16

static char test_names[TEST_MAX_NAMES][64];
static int test_name_count;
static pid_t test_main_pid;

/* Removes the pools this test created (only from the test's main process). */
static inline void test_cleanup(void)
{
    if (getpid() != test_main_pid)
        return;
    for (int i = 0; i < test_name_count; i++)
        lifl_pool_unlink(test_names[i]);
    test_name_count = 0;
}

__attribute__((noreturn, format(printf, 4, 5))) static inline void test_fail(const char *file, int line,
                                                                            const char *expression,
                                                                            const char *format, ...)
{
    va_list args;
    fprintf(stderr, "FAIL %s:%d (pid %d): %s: ", file, line, (int)getpid(), expression);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    fflush(stderr);
    test_cleanup();
    _exit(1);
}

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond))                                                                                               \
            test_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                                     \
    } while (0)

#define CHECK_RC(expression, expected)                                                                             \
    do {                                                                                                           \
        int check_rc_ = (expression);                                                                              \
        int check_expected_ = (expected);                                                                          \
        if (check_rc_ != check_expected_)                                                                          \
            test_fail(__FILE__, __LINE__, #expression, "returned %d (%s), expected %d (%s); errno %d (%s)",      \
                      check_rc_, lifl_strerror(check_rc_), check_expected_, lifl_strerror(check_expected_), errno, \
                      strerror(errno));                                                                            \
    } while (0)

#define CHECK_OK(expression) CHECK_RC(expression, LIFL_OK)

static inline void test_begin(void)
{
    test_main_pid = getpid();
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A pool name unique to this process and call; removed at the end (or on failure). */
static inline const char *test_pool_name(const char *what)
{
    CHECK(test_name_count < TEST_MAX_NAMES, "too many pool names");
    char *name = test_names[test_name_count++];
    snprintf(name, sizeof test_names[0], "test.%s.%d", what, (int)getpid());
    lifl_pool_unlink(name); /* a leftover of a crashed run with the same pid */
    return name;
}

static inline void test_forget_pool(const char *name)
{
    lifl_pool_unlink(name);
}

static inline int64_t test_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static inline void test_sleep_ms(int milliseconds)
{
    struct timespec interval = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000l};
    while (nanosleep(&interval, &interval) != 0 && errno == EINTR) {
    }
}

/* Forks a child that runs `body(argument)` and exits with its result (0: success). */
static inline pid_t test_fork(int (*body)(void *), void *argument)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(body(argument));
    return pid;
}

/* Waits for a child and checks that it exited with 0 (or, with `expect_signal`, was killed by it). */
static inline void test_reap(pid_t pid, int expect_signal)
{
    int status;
    pid_t reaped;
    while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    CHECK(reaped == pid, "waitpid(%d): %s", (int)pid, strerror(errno));
    if (expect_signal)
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == expect_signal, "child %d: status 0x%x, expected signal %d",
              (int)pid, status, expect_signal);
    else
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed: status 0x%x", (int)pid, status);
}

/* Pipes between a test and its children: fixed-size messages. */
static inline void test_write(int fd, const void *data, size_t size)
{
    const char *bytes = data;
    while (size > 0) {
        ssize_t written = write(fd, bytes, size);
        if (written < 0 && errno == EINTR)
            continue;
        CHECK(written > 0, "write to pipe: %s", strerror(errno));
        bytes += written;
        size -= (size_t)written;
    }
}

static inline void test_read(int fd, void *data, size_t size)
{
    char *bytes = data;
    while (size > 0) {
        ssize_t got = read(fd, bytes, size);
        if (got < 0 && errno == EINTR)
            continue;
        CHECK(got > 0, "read from pipe: %s", got == 0 ? "end of file" : strerror(errno));
        bytes += got;
        size -= (size_t)got;
    }
}

/* ---- looking inside the segment ---------------------------------------------------------------------------- */

typedef struct test_segment {
    uint8_t *base;
    size_t size;
    pool_header *header;
} test_segment;

static inline test_segment test_segment_map(const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "/lifl.%s", name);
    int fd = shm_open(path, O_RDWR, 0);
    CHECK(fd >= 0, "shm_open %s: %s", path, strerror(errno));
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(base != MAP_FAILED, "mmap: %s", strerror(errno));
    close(fd);
    test_segment segment = {base, (size_t)st.st_size, base};
    return segment;
}

static inline void test_segment_unmap(test_segment *segment)
{
    munmap(segment->base, segment->size);
}

static inline pool_slot *test_segment_slot(const test_segment *segment, uint32_t slot)
{
    return (pool_slot *)(segment->base + segment->header->slots_offset) + slot;
}

static inline slot_queue *test_segment_queue(const test_segment *segment, uint32_t slot)
{
    return (slot_queue *)(segment->base + segment->header->queues_offset) + slot;
}

/*
 * Walks the free lists of a quiescent pool: every block is a free, aligned head of its order inside the data
 * area, the lists agree with their counts, and free + used bytes make the capacity. Fills `blocks` (per order,
 * may be NULL).
 */
static inline void test_check_allocator(const char *name, uint32_t blocks[POOL_ORDERS])
{
    test_segment segment = test_segment_map(name);
    const pool_header *h = segment.header;
    const page_meta *meta = (const page_meta *)(segment.base + h->meta_offset);
    uint64_t free_bytes = 0;
    for (uint32_t index = 0; index < POOL_ORDERS; index++) {
        uint32_t order = index + POOL_MIN_ORDER;
        uint64_t block_pages = 1ull << index;
        uint32_t count = 0;
        uint32_t previous = POOL_NONE;
        for (uint32_t page = h->free_head[index]; page != POOL_NONE; page = meta[page].next) {
            CHECK(page < h->pages && page + block_pages <= h->pages, "order %u: block %u outside the data area",
                  order, page);
            CHECK((page & (block_pages - 1u)) == 0, "order %u: block %u not aligned", order, page);
            CHECK(meta[page].state == PAGE_FREE && meta[page].order == order,
                  "order %u: block %u has state %u order %u", order, page, meta[page].state, meta[page].order);
            CHECK(meta[page].prev == previous, "order %u: block %u: broken back link", order, page);
            CHECK(count <= h->pages, "order %u: cycle in the free list", order);
            previous = page;
            count++;
        }
        CHECK(count == h->free_blocks[index], "order %u: %u blocks listed, %u counted", order, count,
              h->free_blocks[index]);
        free_bytes += (uint64_t)count << order;
        if (blocks)
            blocks[index] = count;
    }
    CHECK(free_bytes + h->used_bytes == h->capacity, "free %llu + used %llu != capacity %llu",
          (unsigned long long)free_bytes, (unsigned long long)h->used_bytes, (unsigned long long)h->capacity);
    test_segment_unmap(&segment);
}

static inline lifl_pool_stats test_stats(lifl_pool *pool)
{
    lifl_pool_stats stats;
    CHECK_OK(lifl_pool_get_stats(pool, &stats));
    return stats;
}

/* The figures that must return to their baseline once every buffer is gone. */
#define CHECK_STATS_AT_BASELINE(now, base)                                                                         \
    do {                                                                                                           \
        CHECK((now).used_bytes == (base).used_bytes && (now).requested_bytes == (base).requested_bytes &&          \
                  (now).live_buffers == (base).live_buffers &&                                                     \
                  (now).largest_free_bytes == (base).largest_free_bytes &&                                         \
                  (now).allocations - (base).allocations == (now).frees - (base).frees,                            \
              "stats off baseline: used %llu/%llu requested %llu/%llu live %llu/%llu largest %llu/%llu "            \
              "allocations +%llu frees +%llu",                                                                     \
              (unsigned long long)(now).used_bytes, (unsigned long long)(base).used_bytes,                         \
              (unsigned long long)(now).requested_bytes, (unsigned long long)(base).requested_bytes,               \
              (unsigned long long)(now).live_buffers, (unsigned long long)(base).live_buffers,                     \
              (unsigned long long)(now).largest_free_bytes, (unsigned long long)(base).largest_free_bytes,         \
              (unsigned long long)((now).allocations - (base).allocations),                                        \
              (unsigned long long)((now).frees - (base).frees));                                                   \
    } while (0)

/* Deterministic contents of a buffer, so any holder can tell whether someone else wrote into it. */
static inline uint8_t test_pattern_byte(const lifl_desc *desc, uint64_t index)
{
    uint64_t x = ((uint64_t)desc->record << 32 | desc->generation) * 0x9e3779b97f4a7c15ull + index;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)x;
}

#define TEST_PATTERN_HEAD 2048u
#define TEST_PATTERN_TAIL 64u

/* Writes the pattern over the buffer's first 2 KiB and last 64 bytes (touching at most two pages). */
static inline void test_fill(lifl_pool *pool, const lifl_desc *desc)
{
    uint8_t *bytes = (uint8_t *)lifl_pool_data(pool) + desc->offset;
    uint64_t head = desc->length < TEST_PATTERN_HEAD ? desc->length : TEST_PATTERN_HEAD;
    for (uint64_t i = 0; i < head; i++)
        bytes[i] = test_pattern_byte(desc, i);
    uint64_t tail = desc->length > TEST_PATTERN_TAIL ? desc->length - TEST_PATTERN_TAIL : 0;
    for (uint64_t i = tail > head ? tail : head; i < desc->length; i++)
        bytes[i] = test_pattern_byte(desc, i);
}

static inline int test_verify(lifl_pool *pool, const lifl_desc *desc)
{
    const uint8_t *bytes = (const uint8_t *)lifl_pool_data(pool) + desc->offset;
    uint64_t head = desc->length < TEST_PATTERN_HEAD ? desc->length : TEST_PATTERN_HEAD;
    for (uint64_t i = 0; i < head; i++)
        if (bytes[i] != test_pattern_byte(desc, i))
            return 0;
    uint64_t tail = desc->length > TEST_PATTERN_TAIL ? desc->length - TEST_PATTERN_TAIL : 0;
    for (uint64_t i = tail > head ? tail : head; i < desc->length; i++)
        if (bytes[i] != test_pattern_byte(desc, i))
            return 0;
    return 1;
}

/* A small, fast generator per thread. */
static inline uint64_t test_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Lengths spread evenly over the orders: 1 B .. `max`. */
static inline uint64_t test_random_length(uint64_t *state, uint64_t max)
{
    uint32_t bits = 64u - (uint32_t)__builtin_clzll(max);
    uint32_t shift = (uint32_t)(test_random(state) % bits);
    uint64_t length = (test_random(state) & ((1ull << shift) - 1u)) + (1ull << shift);
    return length > max ? max : length;
}

#endif
