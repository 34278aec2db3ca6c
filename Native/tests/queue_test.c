/*
 * Descriptor queues: FIFO order and tags, LIFL_E_EMPTY / LIFL_E_FULL / LIFL_E_NOSLOT / LIFL_E_INVAL, no futex
 * traffic while the consumer is awake, lifl_queue_wait's timeout, wake-up by a push from another process and by
 * lifl_queue_interrupt, a dead consumer's queue emptied by recovery, and producer processes x descriptors into
 * one consumer: each received exactly once, in each producer's order.
 */
#include "test_support.h"

#include <pthread.h>

static lifl_desc tagged(uint64_t tag)
{
    lifl_desc desc = {0, 0, 0, 0, tag};
    desc.offset = tag * 4096u;
    desc.length = tag + 1u;
    desc.record = (uint32_t)tag;
    desc.generation = (uint32_t)(tag * 2u + 1u);
    return desc;
}

static void test_basics(void)
{
    const char *name = test_pool_name("qbasic");
    lifl_pool *pool, *other;
    CHECK_OK(lifl_pool_open(name, 1 << 20, &pool));
    CHECK_OK(lifl_pool_open(name, 1 << 20, &other));
    uint32_t me = lifl_pool_slot(pool), peer = lifl_pool_slot(other);
    lifl_desc out;
    CHECK_RC(lifl_queue_pop(pool, &out), LIFL_E_EMPTY);
    CHECK_RC(lifl_queue_push(pool, LIFL_MAX_PROCESSES, &out), LIFL_E_INVAL);
    CHECK_RC(lifl_queue_push(pool, me, NULL), LIFL_E_INVAL);
    CHECK_RC(lifl_queue_pop(pool, NULL), LIFL_E_INVAL);
    uint32_t unattached = 0;
    while (unattached == me || unattached == peer)
        unattached++;
    lifl_desc one = tagged(1);
    CHECK_RC(lifl_queue_push(pool, unattached, &one), LIFL_E_NOSLOT);

    /* Every field crosses unchanged, in order; a push to another slot lands only there. */
    for (uint64_t tag = 0; tag < 10; tag++) {
        lifl_desc desc = tagged(tag);
        CHECK_OK(lifl_queue_push(other, me, &desc));
    }
    lifl_desc for_peer = tagged(77);
    CHECK_OK(lifl_queue_push(pool, peer, &for_peer));
    for (uint64_t tag = 0; tag < 10; tag++) {
        CHECK_OK(lifl_queue_pop(pool, &out));
        lifl_desc expected = tagged(tag);
        CHECK(memcmp(&out, &expected, sizeof out) == 0, "entry %llu arrived as tag %llu", (unsigned long long)tag,
              (unsigned long long)out.tag);
    }
    CHECK_RC(lifl_queue_pop(pool, &out), LIFL_E_EMPTY);
    CHECK_OK(lifl_queue_pop(other, &out));
    CHECK(out.tag == 77, "the peer's entry");

    /* Full at LIFL_QUEUE_CAPACITY; one pop makes room for one push; order kept across the wrap. No sleeping
     * consumer: the futex word never moves, i.e. no wake-up system call was made. */
    test_segment segment = test_segment_map(name);
    slot_queue *queue = test_segment_queue(&segment, me);
    uint32_t futex_before = atomic_load(&queue->futex_word);
    for (uint64_t tag = 0; tag < LIFL_QUEUE_CAPACITY; tag++) {
        lifl_desc desc = tagged(tag);
        CHECK_OK(lifl_queue_push(other, me, &desc));
    }
    lifl_desc extra = tagged(LIFL_QUEUE_CAPACITY);
    CHECK_RC(lifl_queue_push(other, me, &extra), LIFL_E_FULL);
    CHECK_OK(lifl_queue_pop(pool, &out));
    CHECK(out.tag == 0, "first in, first out");
    CHECK_OK(lifl_queue_push(other, me, &extra));
    CHECK_RC(lifl_queue_push(other, me, &extra), LIFL_E_FULL);
    for (uint64_t tag = 1; tag <= LIFL_QUEUE_CAPACITY; tag++) {
        CHECK_OK(lifl_queue_pop(pool, &out));
        CHECK(out.tag == tag, "expected %llu, got %llu", (unsigned long long)tag, (unsigned long long)out.tag);
    }
    CHECK_RC(lifl_queue_pop(pool, &out), LIFL_E_EMPTY);
    CHECK(atomic_load(&queue->futex_word) == futex_before, "no wake-ups without a sleeper");
    test_segment_unmap(&segment);

    /* A closed slot takes no more pushes. */
    lifl_pool_close(other);
    CHECK_RC(lifl_queue_push(pool, peer, &one), LIFL_E_NOSLOT);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

struct waiter {
    lifl_pool *pool;
    int timeout_ms;
    int result;
    lifl_desc desc;
    int64_t waited_ms;
};

static void *wait_thread(void *argument)
{
    struct waiter *waiter = argument;
    int64_t started = test_now_ms();
    waiter->result = lifl_queue_wait(waiter->pool, &waiter->desc, waiter->timeout_ms);
    waiter->waited_ms = test_now_ms() - started;
    return NULL;
}

struct pusher {
    const char *name;
    uint32_t slot;
    int delay_ms;
};

static int pushing_child(void *argument)
{
    struct pusher *pusher = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(pusher->name, 1 << 20, &pool));
    test_sleep_ms(pusher->delay_ms);
    lifl_desc desc = tagged(4242);
    CHECK_OK(lifl_queue_push(pool, pusher->slot, &desc));
    lifl_pool_close(pool);
    return 0;
}

static void test_wait(void)
{
    const char *name = test_pool_name("qwait");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 1 << 20, &pool));
    lifl_desc out;

    /* Timeout. */
    int64_t started = test_now_ms();
    CHECK_RC(lifl_queue_wait(pool, &out, 100), LIFL_E_TIMEOUT);
    int64_t waited = test_now_ms() - started;
    CHECK(waited >= 100 && waited < 2000, "waited %lld ms for a 100 ms timeout", (long long)waited);
    CHECK_RC(lifl_queue_wait(pool, &out, 0), LIFL_E_TIMEOUT);
    lifl_desc ready = tagged(5);
    CHECK_OK(lifl_queue_push(pool, lifl_pool_slot(pool), &ready));
    CHECK_OK(lifl_queue_wait(pool, &out, 0));
    CHECK(out.tag == 5, "an entry already there is taken without waiting");

    /* A push from another process wakes a consumer waiting forever. */
    struct waiter waiter = {pool, -1, 1, {0, 0, 0, 0, 0}, 0};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, wait_thread, &waiter) == 0, "pthread_create");
    struct pusher pusher = {name, lifl_pool_slot(pool), 100};
    pid_t child = test_fork(pushing_child, &pusher);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    test_reap(child, 0);
    CHECK(waiter.result == LIFL_OK && waiter.desc.tag == 4242, "woken by the push: %d, tag %llu", waiter.result,
          (unsigned long long)waiter.desc.tag);
    CHECK(waiter.waited_ms >= 50, "it did wait (%lld ms)", (long long)waiter.waited_ms);

    /* lifl_queue_interrupt wakes a waiter early. */
    waiter = (struct waiter){pool, 10000, 1, {0, 0, 0, 0, 0}, 0};
    CHECK(pthread_create(&thread, NULL, wait_thread, &waiter) == 0, "pthread_create");
    test_sleep_ms(100);
    lifl_queue_interrupt(pool);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    CHECK(waiter.result == LIFL_E_TIMEOUT, "interrupted wait returned %d", waiter.result);
    CHECK(waiter.waited_ms < 5000, "interrupted after %lld ms", (long long)waiter.waited_ms);

    /* An interrupt that arrives before the wait is not lost: the next wait returns at once, the one after waits. */
    lifl_queue_interrupt(pool);
    started = test_now_ms();
    CHECK_RC(lifl_queue_wait(pool, &out, 10000), LIFL_E_TIMEOUT);
    CHECK(test_now_ms() - started < 5000, "a pending interrupt ends the next wait");
    started = test_now_ms();
    CHECK_RC(lifl_queue_wait(pool, &out, 50), LIFL_E_TIMEOUT);
    CHECK(test_now_ms() - started >= 50, "consumed by one wait only");
    lifl_pool_close(pool);
    test_forget_pool(name);
}

struct dying_consumer {
    const char *name;
    int to_parent[2];
};

static int dying_consumer_child(void *argument)
{
    struct dying_consumer *consumer = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(consumer->name, 1 << 20, &pool));
    uint32_t slot = lifl_pool_slot(pool);
    test_write(consumer->to_parent[1], &slot, sizeof slot);
    for (;;) {
        lifl_desc desc;
        lifl_queue_wait(pool, &desc, -1); /* asleep when killed */
    }
}

/* A consumer killed with entries queued and asleep in the futex: recovery empties its queue and frees the slot,
 * and the next process in that slot starts with an empty queue. */
static void test_dead_consumer(void)
{
    struct dying_consumer consumer = {test_pool_name("qdead"), {0, 0}};
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(consumer.name, 1 << 20, &pool));
    CHECK(pipe(consumer.to_parent) == 0, "pipe");
    pid_t child = test_fork(dying_consumer_child, &consumer);
    uint32_t slot;
    test_read(consumer.to_parent[0], &slot, sizeof slot);
    test_segment segment = test_segment_map(consumer.name);
    slot_queue *queue = test_segment_queue(&segment, slot);
    for (int spins = 0; spins < 5000 && !atomic_load(&queue->sleeping); spins++)
        test_sleep_ms(1);
    CHECK(atomic_load(&queue->sleeping), "the consumer went to sleep");
    kill(child, SIGKILL);
    test_reap(child, SIGKILL);
    for (uint64_t tag = 0; tag < 100; tag++) {
        lifl_desc desc = tagged(tag);
        CHECK_OK(lifl_queue_push(pool, slot, &desc)); /* not yet recovered: still accepted */
    }
    CHECK_OK(lifl_pool_recover(pool, NULL));
    CHECK(!atomic_load(&queue->sleeping), "the sleeping flag was cleared");
    CHECK(atomic_load(&queue->head) == atomic_load(&queue->tail), "the queue was emptied");
    lifl_desc desc = tagged(1);
    CHECK_RC(lifl_queue_push(pool, slot, &desc), LIFL_E_NOSLOT);
    test_segment_unmap(&segment);

    lifl_pool *successor;
    CHECK_OK(lifl_pool_open(consumer.name, 1 << 20, &successor));
    CHECK(lifl_pool_slot(successor) == slot, "the slot is taken again (%u)", lifl_pool_slot(successor));
    CHECK_RC(lifl_queue_pop(successor, &desc), LIFL_E_EMPTY);
    desc = tagged(9);
    CHECK_OK(lifl_queue_push(pool, slot, &desc));
    CHECK_OK(lifl_queue_pop(successor, &desc));
    CHECK(desc.tag == 9, "the successor gets only its own entries");
    lifl_pool_close(successor);
    close(consumer.to_parent[0]);
    close(consumer.to_parent[1]);
    lifl_pool_close(pool);
    test_forget_pool(consumer.name);
}

#define PRODUCERS 4
#define PER_PRODUCER 100000u

struct producer {
    const char *name;
    uint32_t consumer_slot;
    uint32_t index;
};

static int producing_child(void *argument)
{
    struct producer *producer = argument;
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(producer->name, 1 << 20, &pool));
    for (uint32_t sequence = 0; sequence < PER_PRODUCER; sequence++) {
        lifl_desc desc = tagged(((uint64_t)producer->index << 32) | sequence);
        int rc;
        while ((rc = lifl_queue_push(pool, producer->consumer_slot, &desc)) == LIFL_E_FULL)
            sched_yield();
        CHECK_OK(rc);
    }
    lifl_pool_close(pool);
    return 0;
}

/* PRODUCERS processes push PER_PRODUCER tagged descriptors each; the consumer sees each once, in order. */
static void test_producers(void)
{
    const char *name = test_pool_name("qstress");
    lifl_pool *pool;
    CHECK_OK(lifl_pool_open(name, 1 << 20, &pool));
    struct producer producers[PRODUCERS];
    pid_t pids[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        producers[i] = (struct producer){name, lifl_pool_slot(pool), i};
        pids[i] = test_fork(producing_child, &producers[i]);
    }
    uint32_t next[PRODUCERS] = {0};
    uint64_t received = 0;
    int64_t started = test_now_ms();
    while (received < (uint64_t)PRODUCERS * PER_PRODUCER) {
        lifl_desc desc;
        int rc = lifl_queue_wait(pool, &desc, 10000);
        CHECK(rc != LIFL_E_TIMEOUT, "nothing for 10 s after %llu descriptors", (unsigned long long)received);
        CHECK_OK(rc);
        uint32_t producer = (uint32_t)(desc.tag >> 32), sequence = (uint32_t)desc.tag;
        CHECK(producer < PRODUCERS, "tag from nowhere: %llx", (unsigned long long)desc.tag);
        CHECK(sequence == next[producer], "producer %u: got %u, expected %u", producer, sequence, next[producer]);
        lifl_desc expected = tagged(desc.tag);
        CHECK(memcmp(&desc, &expected, sizeof desc) == 0, "descriptor %llx arrived damaged",
              (unsigned long long)desc.tag);
        next[producer]++;
        received++;
        /* Now and then, let the queue fill up. */
        if (received % 50000 == 0)
            test_sleep_ms(20);
    }
    int64_t elapsed = test_now_ms() - started;
    for (uint32_t i = 0; i < PRODUCERS; i++)
        test_reap(pids[i], 0);
    lifl_desc desc;
    CHECK_RC(lifl_queue_pop(pool, &desc), LIFL_E_EMPTY);
    printf("     %llu descriptors from %d processes in %lld ms\n", (unsigned long long)received, PRODUCERS,
           (long long)elapsed);
    lifl_pool_close(pool);
    test_forget_pool(name);
}

int main(void)
{
    test_begin();
    test_basics();
    printf("ok   basics, full, no wake-ups without a sleeper\n");
    test_wait();
    printf("ok   wait: timeout, wake-up, interrupt\n");
    test_dead_consumer();
    printf("ok   dead consumer\n");
    test_producers();
    printf("ok   producers x descriptors, once each, in order\n");
    test_cleanup();
    return 0;
}
