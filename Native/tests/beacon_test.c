/*
 * Process beacons: a watcher hears of a lit beacon's owner dying (kill -9, or its holding thread ending), sees a
 * beacon put out as out, finds none where none was lit, and every watcher sees the death, also one that comes late.
 */
#include "test_support.h"

#include <pthread.h>

static const char *dir = "/dev/shm";
static char name[64];

static int pipes[2][2];

/* Child: lights the beacon, says so, then waits for a command: 'o' puts it out, anything else just waits. */
static int owner(void *argument)
{
    (void)argument;
    lifl_beacon *beacon;
    CHECK_OK(lifl_beacon_light(dir, name, &beacon));
    char ready = 'r';
    test_write(pipes[0][1], &ready, 1);
    char command;
    test_read(pipes[1][0], &command, 1);
    if (command == 'o')
        CHECK_OK(lifl_beacon_put_out(beacon));
    test_write(pipes[0][1], &ready, 1);
    for (;;)
        pause();
}

typedef struct watch {
    lifl_beacon *beacon;
    int state;
    int64_t at;
} watch;

static void *watch_forever(void *argument)
{
    watch *w = argument;
    w->state = lifl_beacon_wait(w->beacon, -1);
    w->at = test_now_ms();
    return NULL;
}

static pid_t start_owner(void)
{
    CHECK(pipe(pipes[0]) == 0 && pipe(pipes[1]) == 0, "pipe: %s", strerror(errno));
    pid_t pid = test_fork(owner, NULL);
    char ready;
    test_read(pipes[0][0], &ready, 1);
    return pid;
}

static void close_pipes(void)
{
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            close(pipes[i][j]);
}

static void *hold_and_end(void *argument)
{
    (void)argument;
    lifl_beacon *beacon;
    CHECK_OK(lifl_beacon_light(dir, name, &beacon));
    return beacon; /* ends holding it */
}

int main(void)
{
    test_begin();
    snprintf(name, sizeof name, "test.%d", (int)getpid());
    lifl_beacon *beacon;

    /* None lit: none found; bad names refused. */
    CHECK_RC(lifl_beacon_open(dir, name, &beacon), LIFL_E_NOBEACON);
    CHECK_RC(lifl_beacon_open(dir, "../etc", &beacon), LIFL_E_INVAL);
    CHECK_RC(lifl_beacon_light(dir, "a/b", &beacon), LIFL_E_INVAL);

    /* Killed: eight watchers already waiting (more than glibc would pass the news on to, had they shared one mutex)
     * and one that comes after all see the death, at once. */
    pid_t pid = start_owner();
    watch watches[8];
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) {
        CHECK_OK(lifl_beacon_open(dir, name, &watches[i].beacon));
        CHECK_RC(lifl_beacon_wait(watches[i].beacon, 0), LIFL_BEACON_LIT);
        CHECK(pthread_create(&threads[i], NULL, watch_forever, &watches[i]) == 0, "pthread_create");
    }
    CHECK_OK(lifl_beacon_open(dir, name, &beacon));
    CHECK_RC(lifl_beacon_wait(beacon, 50), LIFL_BEACON_LIT);
    test_sleep_ms(20);
    int64_t killed = test_now_ms();
    CHECK(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    for (int i = 0; i < 8; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
        CHECK(watches[i].state == LIFL_BEACON_DIED, "watcher %d saw state %d", i, watches[i].state);
        CHECK(watches[i].at - killed < 1000, "watcher %d heard of the kill after %lld ms", i, (long long)(watches[i].at - killed));
        lifl_beacon_close(watches[i].beacon);
    }
    CHECK_RC(lifl_beacon_wait(beacon, 1000), LIFL_BEACON_DIED);
    lifl_beacon_close(beacon);
    test_reap(pid, SIGKILL);
    close_pipes();
    CHECK_OK(lifl_beacon_open(dir, name, &beacon));
    CHECK_RC(lifl_beacon_wait(beacon, 0), LIFL_BEACON_DIED);
    lifl_beacon_close(beacon);

    /* A dead owner's leftover is removed; a new owner of the name replaces it anyway. */
    int removed = 0;
    CHECK_OK(lifl_beacon_remove_if_dead(dir, name, &removed));
    CHECK(removed == 1, "the dead owner's beacon was not removed");
    CHECK_RC(lifl_beacon_open(dir, name, &beacon), LIFL_E_NOBEACON);

    /* Put out: a waiting watcher sees it out, the name is gone, and remove_if_dead leaves a lit one alone. */
    pid = start_owner();
    CHECK_OK(lifl_beacon_remove_if_dead(dir, name, &removed));
    CHECK(removed == 0, "a lit beacon was removed");
    CHECK_OK(lifl_beacon_open(dir, name, &watches[0].beacon));
    CHECK(pthread_create(&threads[0], NULL, watch_forever, &watches[0]) == 0, "pthread_create");
    char command = 'o';
    test_write(pipes[1][1], &command, 1);
    char done;
    test_read(pipes[0][0], &done, 1);
    CHECK(pthread_join(threads[0], NULL) == 0, "pthread_join");
    CHECK(watches[0].state == LIFL_BEACON_OUT, "the watcher saw state %d", watches[0].state);
    CHECK_RC(lifl_beacon_wait(watches[0].beacon, 0), LIFL_BEACON_OUT);
    lifl_beacon_close(watches[0].beacon);
    CHECK_RC(lifl_beacon_open(dir, name, &beacon), LIFL_E_NOBEACON);
    CHECK(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    test_reap(pid, SIGKILL);
    close_pipes();

    /* The holding thread ends while its process goes on: that is a death too. Only the holder puts it out. */
    pthread_t holder;
    CHECK(pthread_create(&holder, NULL, hold_and_end, NULL) == 0, "pthread_create");
    void *held;
    CHECK(pthread_join(holder, &held) == 0, "pthread_join");
    CHECK_RC(lifl_beacon_put_out(held), LIFL_E_INVAL);
    CHECK_OK(lifl_beacon_open(dir, name, &beacon));
    CHECK_RC(lifl_beacon_wait(beacon, 1000), LIFL_BEACON_DIED);
    lifl_beacon_close(beacon);
    CHECK_OK(lifl_beacon_remove_if_dead(dir, name, &removed));
    CHECK(removed == 1, "the ended thread's beacon was not removed");
    free(held); /* its mapping stays: the test ends */

    printf("beacon_test: ok\n");
    return 0;
}
