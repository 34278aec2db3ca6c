/*
 * Loader of bpf/silo_redirect.bpf.c. The first process of a node loads the programs, attaches them and pins
 * maps, programs and the cgroup link under pin_dir; later processes open the pins. What is pinned stays in
 * effect when the processes exit, until lifl_ebpf_unpin.
 */
#include "lifl_native.h"

#include "silo_redirect.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define BPFFS_MOUNT "/sys/fs/bpf"

/*
 * Serializes load, reuse and unpin between the processes of the node. Not under pin_dir: a BPF filesystem
 * holds no regular files. It also covers the mount of the BPF filesystem, which must not happen twice. In /run
 * rather than the world-writable /run/lock, where a file another user created first could not be opened with
 * O_CREAT by root (fs.protected_regular).
 */
#define NODE_LOCK_PATH "/run/liflnative-ebpf.lock"
#define NODE_LOCK_FALLBACK_PATH "/tmp/liflnative-ebpf.lock"

/* Pins under pin_dir. The cgroup link is pinned last: while it is missing, the set is incomplete. */
#define PIN_SOCKS "silo_socks"
#define PIN_PORTS "silo_ports"
#define PIN_STATS "redirect_stats"
#define PIN_SOCKOPS_PROG "track_silo_sockets"
#define PIN_MSG_PROG "redirect_to_peer"
#define PIN_CGROUP_LINK "track_silo_sockets_link"

/* Indices and layouts of bpf/silo_redirect.bpf.c; keep in step with it. */
enum redirect_counter { SOCKETS_ADDED = 0, MESSAGES_REDIRECTED = 1, MESSAGES_PASSED = 2, REDIRECT_COUNTERS = 3 };
#define SILO_SOCK_KEY_SIZE 40u

struct lifl_ebpf {
    int socks_fd;
    int ports_fd;
    int stats_fd;
    int sockops_prog_fd;
    int msg_prog_fd;
    int run_stats_fd; /* keeps the kernel's run_cnt/run_time_ns accounting on while open */
};

/* Writes "<step>: <strerror(errno)>" into error; errno is left as it was. */
static int fail_errno(char *error, size_t error_len, const char *step_format, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_errno(char *error, size_t error_len, const char *step_format, ...)
{
    int saved = errno;

    if (error && error_len) {
        va_list args;
        va_start(args, step_format);
        int written = vsnprintf(error, error_len, step_format, args);
        va_end(args);
        if (written >= 0 && (size_t)written < error_len)
            snprintf(error + written, error_len - (size_t)written, ": %s", strerror(saved));
    }
    errno = saved;
    return saved == ENOSYS ? LIFL_E_UNSUPPORTED : LIFL_E_SYS;
}

/* For failures that are not a system call's: the message only. */
static int fail_status(int status, char *error, size_t error_len, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_status(int status, char *error, size_t error_len, const char *format, ...)
{
    if (error && error_len) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, error_len, format, args);
        va_end(args);
    }
    return status;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* libbpf's own diagnostics (a verifier log, a missing kernel feature) explain a failed load; keep the warnings. */
static int print_libbpf_warning(enum libbpf_print_level level, const char *format, va_list args)
{
    if (level != LIBBPF_WARN)
        return 0;
    fputs("liflnative: libbpf: ", stderr);
    return vfprintf(stderr, format, args);
}

static int pin_path(char *path, const char *pin_dir, const char *name)
{
    int written = snprintf(path, PATH_MAX, "%s/%s", pin_dir, name);

    if (written < 0 || written >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int lock_node(int *lock_fd, char *error, size_t error_len)
{
    /* Read-only and readable by all: a caller without the rights to load fails at the step that needs them. */
    const int flags = O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
    const char *path = NODE_LOCK_PATH;
    int fd = open(path, flags, 0644);

    if (fd < 0 && errno == ENOENT) {
        path = NODE_LOCK_FALLBACK_PATH;
        fd = open(path, flags, 0644);
    }
    if (fd < 0)
        return fail_errno(error, error_len, "open lock file %s", path);
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int status = fail_errno(error, error_len, "lock %s", path);
            close(fd);
            return status;
        }
    }
    *lock_fd = fd;
    return LIFL_OK;
}

/* Unlocks by closing: the lock goes with the open file description. */
static void unlock_node(int *lock_fd)
{
    close_fd(lock_fd);
}

static int is_on_bpffs(const char *path)
{
    struct statfs fs;

    return statfs(path, &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

/*
 * The directory that holds pin_dir must be on a BPF filesystem. The conventional one, /sys/fs/bpf, is mounted
 * here when it is not (systems without systemd leave it unmounted). Called under the node lock.
 */
static int ensure_bpffs(const char *pin_dir, char *error, size_t error_len)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(pin_dir, '/');
    size_t parent_len = slash == pin_dir ? 1 : (size_t)(slash - pin_dir);

    memcpy(parent, pin_dir, parent_len);
    parent[parent_len] = '\0';
    if (is_on_bpffs(parent))
        return LIFL_OK;

    if (strncmp(pin_dir, BPFFS_MOUNT "/", sizeof(BPFFS_MOUNT)) == 0 && !is_on_bpffs(BPFFS_MOUNT)) {
        if (mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700") < 0) {
            int status = fail_errno(error, error_len, "mount the BPF filesystem at " BPFFS_MOUNT);
            return errno == ENODEV ? LIFL_E_UNSUPPORTED : status;
        }
        if (is_on_bpffs(parent))
            return LIFL_OK;
    }
    errno = ENOTDIR;
    return fail_errno(error, error_len, "%s is not a directory on a BPF filesystem", parent);
}

static int open_cgroup(const char *cgroup_path, int *cgroup_fd, char *error, size_t error_len)
{
    struct statfs fs;
    int fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return fail_errno(error, error_len, "open cgroup %s", cgroup_path);
    if (fstatfs(fd, &fs) < 0) {
        int status = fail_errno(error, error_len, "statfs cgroup %s", cgroup_path);
        close(fd);
        return status;
    }
    if (fs.f_type != CGROUP2_SUPER_MAGIC) {
        close(fd);
        return fail_status(LIFL_E_INVAL, error, error_len, "cgroup %s: not a cgroup v2 directory (see /proc/mounts)",
                           cgroup_path);
    }
    *cgroup_fd = fd;
    return LIFL_OK;
}

static void remove_pins(const char *pin_dir)
{
    static const char *const names[] = {PIN_CGROUP_LINK, PIN_MSG_PROG, PIN_SOCKOPS_PROG,
                                        PIN_STATS,       PIN_PORTS,    PIN_SOCKS};
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (pin_path(path, pin_dir, names[i]) == 0)
            unlink(path);
}

/*
 * Loads the programs, attaches them and pins everything under pin_dir. On failure nothing stays: the pins made
 * are removed, and closing the last descriptors detaches the unpinned link and frees programs and maps (with
 * them the sk_msg attachment, which belongs to the map).
 */
static int load_and_pin(const char *pin_dir, const char *cgroup_path, char *error, size_t error_len)
{
    struct silo_redirect_bpf *skel = NULL;
    struct bpf_link *link = NULL;
    int cgroup_fd = -1;
    int created_dir = 0;
    char path[PATH_MAX];
    int status = open_cgroup(cgroup_path, &cgroup_fd, error, error_len);

    if (status != LIFL_OK)
        return status;

    skel = silo_redirect_bpf__open_and_load();
    if (!skel) {
        status = fail_errno(error, error_len, "load the BPF programs");
        goto out;
    }
    /* sk_msg first: a socket the sock_ops program adds finds its message program in place. */
    if (bpf_prog_attach(bpf_program__fd(skel->progs.redirect_to_peer), bpf_map__fd(skel->maps.silo_socks),
                        BPF_SK_MSG_VERDICT, 0) < 0) {
        status = fail_errno(error, error_len, "attach redirect_to_peer to silo_socks");
        goto out;
    }
    link = bpf_program__attach_cgroup(skel->progs.track_silo_sockets, cgroup_fd);
    if (!link) {
        status = fail_errno(error, error_len, "attach track_silo_sockets to cgroup %s", cgroup_path);
        goto out;
    }

    if (mkdir(pin_dir, 0700) == 0) {
        created_dir = 1;
    } else if (errno != EEXIST) {
        status = fail_errno(error, error_len, "create pin directory %s", pin_dir);
        goto out;
    }
    struct {
        const char *name;
        int is_map;
        void *object;
    } const pins[] = {
        {PIN_SOCKS, 1, skel->maps.silo_socks},
        {PIN_PORTS, 1, skel->maps.silo_ports},
        {PIN_STATS, 1, skel->maps.redirect_stats},
        {PIN_SOCKOPS_PROG, 0, skel->progs.track_silo_sockets},
        {PIN_MSG_PROG, 0, skel->progs.redirect_to_peer},
    };
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        int pinned = pin_path(path, pin_dir, pins[i].name);
        if (pinned == 0)
            pinned = pins[i].is_map ? bpf_map__pin(pins[i].object, path) : bpf_program__pin(pins[i].object, path);
        if (pinned < 0) { /* libbpf sets errno too */
            status = fail_errno(error, error_len, "pin %s/%s", pin_dir, pins[i].name);
            goto out;
        }
    }
    int pinned = pin_path(path, pin_dir, PIN_CGROUP_LINK);
    if (pinned == 0)
        pinned = bpf_link__pin(link, path);
    if (pinned < 0) {
        status = fail_errno(error, error_len, "pin %s/%s", pin_dir, PIN_CGROUP_LINK);
        goto out;
    }
    /*
     * The pin holds the link now: bpf_link__destroy below only closes our descriptor (do not disconnect it,
     * that would skip the close and leak the descriptor).
     */
    status = LIFL_OK;

out:
    if (status != LIFL_OK) {
        int saved = errno;
        remove_pins(pin_dir);
        if (created_dir)
            rmdir(pin_dir);
        errno = saved;
    }
    bpf_link__destroy(link);
    silo_redirect_bpf__destroy(skel);
    close_fd(&cgroup_fd);
    return status;
}

static int check_map(int fd, const char *name, __u32 type, __u32 key_size, __u32 value_size, char *error,
                     size_t error_len)
{
    struct bpf_map_info info;
    __u32 info_len = sizeof(info);

    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &info_len) < 0)
        return fail_errno(error, error_len, "read the info of pinned map %s", name);
    if (info.type != type || info.key_size != key_size || info.value_size != value_size)
        return fail_status(LIFL_E_LAYOUT, error, error_len,
                           "pinned map %s: type %u, key %u bytes, value %u bytes (expected %u, %u, %u): "
                           "pinned by another build? lifl_ebpf_unpin it",
                           name, info.type, info.key_size, info.value_size, type, key_size, value_size);
    return LIFL_OK;
}

static int check_prog(int fd, const char *name, __u32 type, char *error, size_t error_len)
{
    struct bpf_prog_info info;
    __u32 info_len = sizeof(info);

    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &info_len) < 0)
        return fail_errno(error, error_len, "read the info of pinned program %s", name);
    if (info.type != type)
        return fail_status(LIFL_E_LAYOUT, error, error_len, "pinned program %s: type %u, expected %u", name,
                           info.type, type);
    return LIFL_OK;
}

/* Reused pins must be in effect for the cgroup this caller asked for, or its sockets would silently not be seen. */
static int check_link_cgroup(const char *pin_dir, const char *cgroup_path, char *error, size_t error_len)
{
    char path[PATH_MAX];
    struct bpf_link_info info;
    __u32 info_len = sizeof(info);
    struct stat cgroup;
    int cgroup_fd = -1;
    int link_fd;
    int status = open_cgroup(cgroup_path, &cgroup_fd, error, error_len);

    if (status != LIFL_OK)
        return status;
    if (pin_path(path, pin_dir, PIN_CGROUP_LINK) < 0 || (link_fd = bpf_obj_get(path)) < 0) {
        status = fail_errno(error, error_len, "open pinned link %s/%s", pin_dir, PIN_CGROUP_LINK);
        close(cgroup_fd);
        return status;
    }
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(link_fd, &info, &info_len) < 0) {
        status = fail_errno(error, error_len, "read the info of pinned link %s/%s", pin_dir, PIN_CGROUP_LINK);
    } else if (fstat(cgroup_fd, &cgroup) < 0) {
        status = fail_errno(error, error_len, "stat cgroup %s", cgroup_path);
    } else if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != (__u64)cgroup.st_ino) {
        /* A cgroup v2 directory's inode number is its cgroup id. */
        status = fail_status(LIFL_E_INVAL, error, error_len,
                             "the redirection pinned under %s is attached to cgroup id %llu, not to %s (id %llu)",
                             pin_dir, (unsigned long long)info.cgroup.cgroup_id, cgroup_path,
                             (unsigned long long)cgroup.st_ino);
    }
    close(link_fd);
    close(cgroup_fd);
    return status;
}

static void destroy_handle(struct lifl_ebpf *ebpf)
{
    close_fd(&ebpf->socks_fd);
    close_fd(&ebpf->ports_fd);
    close_fd(&ebpf->stats_fd);
    close_fd(&ebpf->sockops_prog_fd);
    close_fd(&ebpf->msg_prog_fd);
    close_fd(&ebpf->run_stats_fd);
    free(ebpf);
}

static int open_pinned(const char *pin_dir, struct lifl_ebpf *ebpf, char *error, size_t error_len)
{
    struct {
        const char *name;
        int *fd;
    } const pins[] = {
        {PIN_SOCKS, &ebpf->socks_fd},
        {PIN_PORTS, &ebpf->ports_fd},
        {PIN_STATS, &ebpf->stats_fd},
        {PIN_SOCKOPS_PROG, &ebpf->sockops_prog_fd},
        {PIN_MSG_PROG, &ebpf->msg_prog_fd},
    };
    char path[PATH_MAX];
    int status;

    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
        if (pin_path(path, pin_dir, pins[i].name) < 0 || (*pins[i].fd = bpf_obj_get(path)) < 0)
            return fail_errno(error, error_len, "open pinned %s/%s", pin_dir, pins[i].name);
    }
    if ((status = check_map(ebpf->socks_fd, PIN_SOCKS, BPF_MAP_TYPE_SOCKHASH, SILO_SOCK_KEY_SIZE, 8, error,
                            error_len)) != LIFL_OK ||
        (status = check_map(ebpf->ports_fd, PIN_PORTS, BPF_MAP_TYPE_HASH, 2, 1, error, error_len)) != LIFL_OK ||
        (status = check_map(ebpf->stats_fd, PIN_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, error, error_len)) !=
            LIFL_OK ||
        (status = check_prog(ebpf->sockops_prog_fd, PIN_SOCKOPS_PROG, BPF_PROG_TYPE_SOCK_OPS, error, error_len)) !=
            LIFL_OK ||
        (status = check_prog(ebpf->msg_prog_fd, PIN_MSG_PROG, BPF_PROG_TYPE_SK_MSG, error, error_len)) != LIFL_OK)
        return status;
    return LIFL_OK;
}

/* pin_dir without trailing slashes; it must be absolute and name a directory below the root. */
static int normalize_pin_dir(const char *pin_dir, char *normalized, char *error, size_t error_len)
{
    size_t len = pin_dir ? strlen(pin_dir) : 0;

    while (len > 1 && pin_dir[len - 1] == '/')
        len--;
    if (len < 2 || pin_dir[0] != '/')
        return fail_status(LIFL_E_INVAL, error, error_len, "pin_dir must be an absolute path, e.g. " BPFFS_MOUNT
                                                            "/lifl-<cluster>");
    if (len >= PATH_MAX - 32)
        return fail_status(LIFL_E_INVAL, error, error_len, "pin_dir is too long");
    memcpy(normalized, pin_dir, len);
    normalized[len] = '\0';
    return LIFL_OK;
}

int lifl_ebpf_open(const char *pin_dir, const char *cgroup_path, lifl_ebpf **out, char *error, size_t error_len)
{
    char dir[PATH_MAX];
    char path[PATH_MAX];
    struct lifl_ebpf *ebpf;
    int lock_fd = -1;
    int status;

    if (error && error_len)
        error[0] = '\0';
    if (!out)
        return fail_status(LIFL_E_INVAL, error, error_len, "out is NULL");
    *out = NULL;
    if ((status = normalize_pin_dir(pin_dir, dir, error, error_len)) != LIFL_OK)
        return status;
    if (!cgroup_path || !*cgroup_path)
        return fail_status(LIFL_E_INVAL, error, error_len, "cgroup_path is required (a cgroup v2 directory)");

    ebpf = malloc(sizeof(*ebpf));
    if (!ebpf) {
        errno = ENOMEM;
        return fail_errno(error, error_len, "allocate the handle");
    }
    ebpf->socks_fd = ebpf->ports_fd = ebpf->stats_fd = -1;
    ebpf->sockops_prog_fd = ebpf->msg_prog_fd = ebpf->run_stats_fd = -1;

    libbpf_set_print(print_libbpf_warning);
    if ((status = lock_node(&lock_fd, error, error_len)) != LIFL_OK)
        goto fail;
    if ((status = ensure_bpffs(dir, error, error_len)) != LIFL_OK)
        goto fail;
    if (pin_path(path, dir, PIN_CGROUP_LINK) < 0) {
        status = fail_errno(error, error_len, "pin path under %s", dir);
        goto fail;
    }
    if (access(path, F_OK) == 0) {
        status = check_link_cgroup(dir, cgroup_path, error, error_len);
    } else if (errno == ENOENT) {
        /* Nothing pinned, or what a process that died while loading left behind. */
        remove_pins(dir);
        status = load_and_pin(dir, cgroup_path, error, error_len);
    } else {
        status = fail_errno(error, error_len, "look for %s", path);
    }
    if (status != LIFL_OK)
        goto fail;
    if ((status = open_pinned(dir, ebpf, error, error_len)) != LIFL_OK)
        goto fail;
    unlock_node(&lock_fd);

    ebpf->run_stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (ebpf->run_stats_fd < 0) {
        status = fail_errno(error, error_len, "enable the kernel's BPF run statistics");
        goto fail;
    }
    *out = ebpf;
    return LIFL_OK;

fail: {
    int saved = errno;
    unlock_node(&lock_fd);
    destroy_handle(ebpf);
    errno = saved;
    return status;
}
}

/* Whether a TCP port of this machine is free: nothing is bound to it on any address (binding the wildcard address
 * fails while any socket holds the port, listening or lingering). */
static int port_is_free(uint16_t port)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int free_port;

    if (fd < 0)
        return 0;
    free_port = bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
    close(fd);
    return free_port;
}

/* Drops the registered ports nothing holds any more: silos killed with SIGKILL never unregister theirs, the map is
 * bounded, and a stale entry captures unrelated sockets. Returns how many were dropped. */
static int prune_stale_ports(int ports_fd)
{
    uint16_t key, next, stale[1024];
    int count = 0, dropped = 0;
    uint16_t *previous = NULL;

    while (count < (int)(sizeof(stale) / sizeof(stale[0])) && bpf_map_get_next_key(ports_fd, previous, &next) == 0) {
        key = next;
        previous = &key;
        if (port_is_free(key))
            stale[count++] = key;
    }
    for (int i = 0; i < count; i++)
        if (bpf_map_delete_elem(ports_fd, &stale[i]) == 0)
            dropped++;
    return dropped;
}

int lifl_ebpf_add_port(lifl_ebpf *ebpf, uint16_t port)
{
    __u8 registered = 1;

    if (!ebpf || port == 0)
        return LIFL_E_INVAL;
    /* Stale ports are dropped first, not only once the map is full: while a dead silo's port stays registered, the
     * sock_ops program takes any socket on that port number into the sockhash, another program's sockets included
     * (and a socket can join one sockhash only). One bind attempt per registered port, once per silo start. */
    prune_stale_ports(ebpf->ports_fd);
    if (bpf_map_update_elem(ebpf->ports_fd, &port, &registered, BPF_ANY) == 0)
        return LIFL_OK;
    if (errno == E2BIG && prune_stale_ports(ebpf->ports_fd) > 0 && bpf_map_update_elem(ebpf->ports_fd, &port, &registered, BPF_ANY) == 0)
        return LIFL_OK;
    return LIFL_E_SYS;
}

int lifl_ebpf_remove_port(lifl_ebpf *ebpf, uint16_t port)
{
    if (!ebpf || port == 0)
        return LIFL_E_INVAL;
    if (bpf_map_delete_elem(ebpf->ports_fd, &port) < 0 && errno != ENOENT)
        return LIFL_E_SYS;
    return LIFL_OK;
}

static int prog_run_count(int prog_fd, uint64_t *run_count)
{
    struct bpf_prog_info info;
    __u32 info_len = sizeof(info);

    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &info_len) < 0)
        return LIFL_E_SYS;
    *run_count = info.run_cnt;
    return LIFL_OK;
}

int lifl_ebpf_get_stats(lifl_ebpf *ebpf, lifl_ebpf_stats *out)
{
    uint64_t counters[REDIRECT_COUNTERS] = {0};
    int cpus;
    __u64 *per_cpu;
    int status = LIFL_OK;

    if (!ebpf || !out)
        return LIFL_E_INVAL;
    cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        errno = cpus < 0 ? -cpus : EINVAL;
        return LIFL_E_SYS;
    }
    per_cpu = calloc((size_t)cpus, sizeof(*per_cpu));
    if (!per_cpu)
        return LIFL_E_NOMEM;
    for (__u32 counter = 0; counter < REDIRECT_COUNTERS && status == LIFL_OK; counter++) {
        if (bpf_map_lookup_elem(ebpf->stats_fd, &counter, per_cpu) < 0) {
            status = LIFL_E_SYS;
            break;
        }
        for (int cpu = 0; cpu < cpus; cpu++)
            counters[counter] += per_cpu[cpu];
    }
    free(per_cpu);
    if (status != LIFL_OK)
        return status;

    out->sockets_added = counters[SOCKETS_ADDED];
    out->messages_redirected = counters[MESSAGES_REDIRECTED];
    out->messages_passed = counters[MESSAGES_PASSED];
    if ((status = prog_run_count(ebpf->msg_prog_fd, &out->msg_prog_run_count)) != LIFL_OK)
        return status;
    return prog_run_count(ebpf->sockops_prog_fd, &out->sockops_prog_run_count);
}

void lifl_ebpf_close(lifl_ebpf *ebpf)
{
    if (ebpf)
        destroy_handle(ebpf);
}

/* Opens a pin of pin_dir; -1 with errno ENOENT when it is not there. */
static int open_pin(const char *pin_dir, const char *name)
{
    char path[PATH_MAX];

    return pin_path(path, pin_dir, name) < 0 ? -1 : bpf_obj_get(path);
}

/* Detaches sock_ops from the cgroup: through the pinned link, or, when only the program is pinned, directly. */
static int detach_sockops(const char *dir, const char *cgroup_path)
{
    int link_fd = open_pin(dir, PIN_CGROUP_LINK);
    int status = LIFL_OK;

    if (link_fd >= 0) {
        /* Detaching the link itself (not only unpinning it) also stops it if another process holds its fd. */
        if (bpf_link_detach(link_fd) < 0)
            status = LIFL_E_SYS;
        close(link_fd);
        return status;
    }
    if (errno != ENOENT)
        return LIFL_E_SYS;

    int prog_fd = open_pin(dir, PIN_SOCKOPS_PROG);
    if (prog_fd < 0)
        return errno == ENOENT ? LIFL_OK : LIFL_E_SYS;
    if (cgroup_path && *cgroup_path) {
        int cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd < 0) {
            status = LIFL_E_SYS;
        } else {
            if (bpf_prog_detach2(prog_fd, cgroup_fd, BPF_CGROUP_SOCK_OPS) < 0 && errno != ENOENT)
                status = LIFL_E_SYS;
            close(cgroup_fd);
        }
    }
    close(prog_fd);
    return status;
}

/*
 * Detaches sk_msg from the sockhash. Sockets already in it keep the program they were given when they were added
 * and go on redirecting until they close; they are not taken out, because that would drop the messages already
 * redirected into their receive queues and not yet read. The maps and programs live on, unpinned, until then.
 */
static int detach_sk_msg(const char *dir)
{
    int status = LIFL_OK;
    int prog_fd = open_pin(dir, PIN_MSG_PROG);
    int socks_fd = open_pin(dir, PIN_SOCKS);

    if (prog_fd < 0 || socks_fd < 0) {
        if (errno != ENOENT)
            status = LIFL_E_SYS;
    } else if (bpf_prog_detach2(prog_fd, socks_fd, BPF_SK_MSG_VERDICT) < 0 && errno != ENOENT) {
        status = LIFL_E_SYS;
    }
    int saved = errno;
    if (prog_fd >= 0)
        close(prog_fd);
    if (socks_fd >= 0)
        close(socks_fd);
    errno = saved;
    return status;
}

int lifl_ebpf_unpin(const char *pin_dir, const char *cgroup_path)
{
    char dir[PATH_MAX];
    int lock_fd = -1;
    int status;

    if (normalize_pin_dir(pin_dir, dir, NULL, 0) != LIFL_OK)
        return LIFL_E_INVAL;
    if (lock_node(&lock_fd, NULL, 0) != LIFL_OK)
        return LIFL_E_SYS;

    struct stat st;
    if (stat(dir, &st) < 0) {
        /* Nothing pinned: already unpinned. */
        status = errno == ENOENT ? LIFL_OK : LIFL_E_SYS;
        goto out;
    }
    if ((status = detach_sockops(dir, cgroup_path)) != LIFL_OK)
        goto out;
    if ((status = detach_sk_msg(dir)) != LIFL_OK)
        goto out;
    remove_pins(dir);
    if (rmdir(dir) < 0)
        status = LIFL_E_SYS;

out:;
    int saved = errno;
    unlock_node(&lock_fd);
    errno = saved;
    return status;
}
