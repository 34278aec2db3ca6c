/*
 * Process beacons (lifl_native.h): robust, process-shared mutexes in a small shared-memory file, held by one
 * thread of their owner for the owner's life. The kernel releases them when that thread exits holding them (the
 * thread's robust-futex list is walked as it exits, before its process's memory and files are taken down) and
 * wakes a watcher blocked on each with EOWNERDEAD.
 *
 * One mutex per watcher, not one for all: the kernel wakes one waiter of a dead owner's mutex, and glibc passes
 * the news on to the next waiter once, not down the whole queue (measured: of eight watchers of one mutex, two
 * woke within a millisecond and six only when their timed waits ended). So the owner holds BEACON_SLOTS mutexes
 * and each watcher waits on the least watched one; the kernel wakes the waiter of every one of them.
 */
#include "lifl_native.h"
#include "pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BEACON_MAGIC 0x314e434245464c4cull /* "LLFEBCN1" */
#define BEACON_BYTES 4096u
#define BEACON_PREFIX "lifl.beacon."
#define BEACON_SLOTS 64u

typedef struct beacon_slot {
    pthread_mutex_t mutex;
    _Atomic uint32_t watchers; /* how many watches wait on this one */
} beacon_slot;

typedef struct beacon_shared {
    uint64_t magic;
    _Atomic uint32_t state; /* enum lifl_beacon_state */
    int32_t pid;            /* of the owner, for people looking at the file */
    beacon_slot slots[BEACON_SLOTS];
} beacon_shared;

_Static_assert(sizeof(beacon_shared) <= BEACON_BYTES, "a beacon fits its file");

struct lifl_beacon {
    beacon_shared *shared;
    int lit;            /* this process lit it (and `owner` holds it) */
    uint32_t slot;      /* a watch's */
    pthread_t owner;
    dev_t device;       /* of the file lit, so that putting it out removes that file and no other */
    ino_t inode;
    char path[PATH_MAX];
};

static int beacon_path(const char *dir, const char *name, char *path, size_t size)
{
    if (!dir || !*dir || !lifl_valid_name(name))
        return LIFL_E_INVAL;
    int length = snprintf(path, size, "%s/" BEACON_PREFIX "%s", dir, name);
    return length > 0 && (size_t)length < size ? LIFL_OK : LIFL_E_INVAL;
}

static beacon_shared *map_beacon(int fd)
{
    void *mapped = mmap(NULL, BEACON_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return mapped == MAP_FAILED ? NULL : mapped;
}

/* Removes the beacon's name if it still names the file this handle mapped (not a newer owner's); says whether it did. */
static int unlink_own(const lifl_beacon *beacon)
{
    struct stat file;
    return stat(beacon->path, &file) == 0 && file.st_dev == beacon->device && file.st_ino == beacon->inode &&
           unlink(beacon->path) == 0;
}

/* Checks the arguments and makes a handle holding the beacon's path (*out is cleared until it succeeds). */
static int new_handle(const char *dir, const char *name, lifl_beacon **out, lifl_beacon **beacon)
{
    if (!out)
        return LIFL_E_INVAL;
    *out = NULL;
    *beacon = calloc(1, sizeof **beacon);
    if (!*beacon)
        return LIFL_E_SYS;
    int rc = beacon_path(dir, name, (*beacon)->path, sizeof(*beacon)->path);
    if (rc != LIFL_OK) {
        free(*beacon);
        *beacon = NULL;
    }
    return rc;
}

int lifl_beacon_light(const char *dir, const char *name, lifl_beacon **out)
{
    lifl_beacon *beacon;
    int rc = new_handle(dir, name, out, &beacon);
    if (rc != LIFL_OK)
        return rc;
    char temporary[PATH_MAX];
    if (snprintf(temporary, sizeof temporary, "%s.%d.%lu.lighting", beacon->path, (int)getpid(),
                 (unsigned long)pthread_self()) >= (int)sizeof temporary) {
        free(beacon);
        return LIFL_E_INVAL;
    }

    int fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct stat file;
    if (fd < 0 || ftruncate(fd, BEACON_BYTES) != 0 || fstat(fd, &file) != 0 || !(beacon->shared = map_beacon(fd))) {
        int error = errno;
        if (fd >= 0) {
            close(fd);
            unlink(temporary);
        }
        free(beacon);
        errno = error;
        return LIFL_E_SYS;
    }
    close(fd);
    beacon->device = file.st_dev;
    beacon->inode = file.st_ino;

    pthread_mutexattr_t attributes;
    int error = pthread_mutexattr_init(&attributes);
    if (!error)
        error = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (!error)
        error = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    uint32_t locked = 0;
    for (; !error && locked < BEACON_SLOTS; locked++) {
        error = pthread_mutex_init(&beacon->shared->slots[locked].mutex, &attributes);
        if (!error)
            error = pthread_mutex_lock(&beacon->shared->slots[locked].mutex);
        if (error)
            break;
    }
    pthread_mutexattr_destroy(&attributes);
    if (!error) {
        beacon->shared->magic = BEACON_MAGIC;
        beacon->shared->pid = (int32_t)getpid();
        atomic_store(&beacon->shared->state, LIFL_BEACON_LIT);
        /* Named only once held: a watcher never finds it unlocked while its owner lives. */
        if (rename(temporary, beacon->path) != 0)
            error = errno;
    }
    if (error) {
        while (locked > 0)
            pthread_mutex_unlock(&beacon->shared->slots[--locked].mutex);
        unlink(temporary);
        munmap(beacon->shared, BEACON_BYTES);
        free(beacon);
        errno = error;
        return LIFL_E_SYS;
    }

    beacon->lit = 1;
    beacon->owner = pthread_self();
    *out = beacon;
    return LIFL_OK;
}

int lifl_beacon_put_out(lifl_beacon *beacon)
{
    if (!beacon || !beacon->lit || !pthread_equal(beacon->owner, pthread_self()))
        return LIFL_E_INVAL;
    atomic_store(&beacon->shared->state, LIFL_BEACON_OUT);
    unlink_own(beacon);
    for (uint32_t slot = 0; slot < BEACON_SLOTS; slot++)
        pthread_mutex_unlock(&beacon->shared->slots[slot].mutex);
    munmap(beacon->shared, BEACON_BYTES);
    free(beacon);
    return LIFL_OK;
}

int lifl_beacon_open(const char *dir, const char *name, lifl_beacon **out)
{
    lifl_beacon *beacon;
    int rc = new_handle(dir, name, out, &beacon);
    if (rc != LIFL_OK)
        return rc;

    int fd = open(beacon->path, O_RDWR | O_CLOEXEC);
    struct stat file;
    if (fd < 0 || fstat(fd, &file) != 0) {
        int error = errno;
        if (fd >= 0)
            close(fd);
        free(beacon);
        errno = error;
        return error == ENOENT ? LIFL_E_NOBEACON : LIFL_E_SYS;
    }
    if (file.st_size < (off_t)BEACON_BYTES || file.st_uid != geteuid()) {
        /* Too small to be one, or not made by this user: another user's file under that name tells nothing. */
        close(fd);
        free(beacon);
        return LIFL_E_LAYOUT;
    }
    beacon->shared = map_beacon(fd);
    int error = errno;
    close(fd);
    if (!beacon->shared) {
        free(beacon);
        errno = error;
        return LIFL_E_SYS;
    }
    if (beacon->shared->magic != BEACON_MAGIC) {
        munmap(beacon->shared, BEACON_BYTES);
        free(beacon);
        return LIFL_E_LAYOUT;
    }
    beacon->device = file.st_dev;
    beacon->inode = file.st_ino;
    /* The least watched mutex (a race may put two watchers on one: the second still hears at once). */
    uint32_t fewest = UINT32_MAX;
    for (uint32_t slot = 0; slot < BEACON_SLOTS; slot++) {
        uint32_t watchers = atomic_load(&beacon->shared->slots[slot].watchers);
        if (watchers < fewest) {
            fewest = watchers;
            beacon->slot = slot;
        }
    }
    atomic_fetch_add(&beacon->shared->slots[beacon->slot].watchers, 1);
    *out = beacon;
    return LIFL_OK;
}

int lifl_beacon_wait(lifl_beacon *beacon, int timeout_ms)
{
    if (!beacon || beacon->lit)
        return LIFL_E_INVAL;
    beacon_shared *shared = beacon->shared;
    pthread_mutex_t *mutex = &shared->slots[beacon->slot].mutex;
    uint32_t state = atomic_load(&shared->state);
    if (state != LIFL_BEACON_LIT)
        return (int)state;

    int rc;
    if (timeout_ms < 0) {
        rc = pthread_mutex_lock(mutex);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
        if (until.tv_nsec >= 1000000000l) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000l;
        }
        rc = pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &until);
    }

    switch (rc) {
    case ETIMEDOUT:
        return (int)atomic_load(&shared->state);
    case EOWNERDEAD: {
        /* Not made consistent: unlocked so, the mutex stays unrecoverable and every other watcher sees the death.
         * (A beacon put out that a watcher died holding, for an instant, stays out.) */
        uint32_t lit = LIFL_BEACON_LIT;
        atomic_compare_exchange_strong(&shared->state, &lit, LIFL_BEACON_DIED);
        pthread_mutex_unlock(mutex);
        return (int)atomic_load(&shared->state);
    }
    case ENOTRECOVERABLE: {
        uint32_t lit = LIFL_BEACON_LIT;
        atomic_compare_exchange_strong(&shared->state, &lit, LIFL_BEACON_DIED);
        return (int)atomic_load(&shared->state);
    }
    case 0:
        /* Unlocked by its owner: put out (the state says so; an owner never unlocks otherwise). */
        pthread_mutex_unlock(mutex);
        return LIFL_BEACON_OUT;
    default:
        errno = rc;
        return LIFL_E_SYS;
    }
}

void lifl_beacon_close(lifl_beacon *beacon)
{
    if (!beacon || beacon->lit)
        return;
    atomic_fetch_sub(&beacon->shared->slots[beacon->slot].watchers, 1);
    munmap(beacon->shared, BEACON_BYTES);
    free(beacon);
}

int lifl_beacon_remove_if_dead(const char *dir, const char *name, int *removed)
{
    if (removed)
        *removed = 0;
    lifl_beacon *beacon;
    int rc = lifl_beacon_open(dir, name, &beacon);
    if (rc == LIFL_E_NOBEACON)
        return LIFL_OK;
    if (rc != LIFL_OK)
        return rc;
    rc = lifl_beacon_wait(beacon, 0);
    if (rc == LIFL_BEACON_DIED) {
        if (unlink_own(beacon) && removed)
            *removed = 1;
        rc = LIFL_OK;
    } else if (rc >= 0) {
        rc = LIFL_OK;
    }
    lifl_beacon_close(beacon);
    return rc;
}
