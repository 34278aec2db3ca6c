/*
 * The eBPF socket redirection against the running kernel: messages of registered ports go to the peer socket
 * intact and are counted, other ports are left alone, edge-triggered epoll on nonblocking sockets (as .NET uses
 * them) sees redirected data and EOF, the pins are shared by processes and loaded once, and unpinning stops
 * new connections from being redirected while established ones keep working, their queued data intact. Prints
 * the round-trip times of the redirected and the TCP/IP path. Needs root; exits 77 (skipped) without it or
 * without eBPF. Expects no other loader of these programs to attach to the cgroup while it runs.
 */
#include "lifl_native.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef LIFL_TEST_WITH_LIBBPF
#include <bpf/bpf.h>
#endif

#define SKIP_CODE 77
#define WAIT_MS 5000
#define PING_PONGS 1000
#define RTT_ROUNDS 10000
#define RACING_OPENERS 4

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                   \
            return -1;                                                                                             \
        }                                                                                                          \
    } while (0)

/* In run(): stops at the first failing test, through its clean-up. */
#define RUN(test)                                                                                                  \
    do {                                                                                                           \
        if ((test) != 0)                                                                                           \
            goto out;                                                                                              \
        printf("ok   %s\n", #test);                                                                                \
    } while (0)

static char pin_dir[256];
static char racing_pin_dir[256];
static char cgroup_path[4096];

/* ---- sockets ------------------------------------------------------------------------------------------------ */

/* A connected pair in one edge-triggered epoll set, as .NET registers its sockets. */
struct pair {
    int client;
    int server;
    int epoll;
    uint32_t pending[2]; /* events seen and not yet consumed, [0] client, [1] server */
};

static int pair_index(const struct pair *pair, int fd)
{
    return fd == pair->client ? 0 : 1;
}

/* AF_INET: 127.0.0.1; AF_INET6: [::] dual-mode, so that it also accepts IPv4 (its sockets are IPv6, mapped). */
static int listen_loopback(int family, uint16_t *port)
{
    struct sockaddr_storage address;
    socklen_t length = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int off = 0;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&address, 0, sizeof(address));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&address;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        ((struct sockaddr_in6 *)&address)->sin6_family = AF_INET6;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0) {
            close(fd);
            return -1;
        }
    }
    if (bind(fd, (struct sockaddr *)&address, length) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&address)->sin_port
                                    : ((struct sockaddr_in6 *)&address)->sin6_port);
    return fd;
}

static void pair_close(struct pair *pair)
{
    if (pair->client >= 0)
        close(pair->client);
    if (pair->server >= 0)
        close(pair->server);
    if (pair->epoll >= 0)
        close(pair->epoll);
    pair->client = pair->server = pair->epoll = -1;
}

/* Waits until `fd` has had one of `events` since it was last consumed. 0, or -1 on timeout or error. */
static int pair_wait(struct pair *pair, int fd, uint32_t events)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!(pair->pending[pair_index(pair, fd)] & events)) {
        struct epoll_event ready[4];
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed_ms >= WAIT_MS) {
            errno = ETIMEDOUT;
            return -1;
        }
        int count = epoll_wait(pair->epoll, ready, 4, (int)(WAIT_MS - elapsed_ms));
        if (count < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < count; i++)
            pair->pending[pair_index(pair, ready[i].data.fd)] |= ready[i].events;
    }
    return 0;
}

static int open_pair(int family, int listener, uint16_t port, struct pair *pair)
{
    struct sockaddr_in address4 = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in6 address6 = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct sockaddr *address = family == AF_INET ? (struct sockaddr *)&address4 : (struct sockaddr *)&address6;
    socklen_t address_length = family == AF_INET ? sizeof(address4) : sizeof(address6);
    int one = 1;
    int error = 0;
    socklen_t error_length = sizeof(error);

    memset(pair, 0, sizeof(*pair));
    pair->server = pair->epoll = -1;
    pair->client = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(pair->client >= 0, "socket: %s", strerror(errno));
    pair->epoll = epoll_create1(EPOLL_CLOEXEC);
    CHECK(pair->epoll >= 0, "epoll_create1: %s", strerror(errno));
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = pair->client};
    CHECK(epoll_ctl(pair->epoll, EPOLL_CTL_ADD, pair->client, &event) == 0, "epoll_ctl: %s", strerror(errno));
    CHECK(connect(pair->client, address, address_length) == 0 || errno == EINPROGRESS,
          "connect: %s", strerror(errno));
    CHECK(pair_wait(pair, pair->client, EPOLLOUT) == 0, "connect did not complete: %s", strerror(errno));
    pair->pending[0] &= ~(uint32_t)EPOLLOUT;
    CHECK(getsockopt(pair->client, SOL_SOCKET, SO_ERROR, &error, &error_length) == 0 && error == 0,
          "connect: %s", strerror(error));

    for (int attempt = 0; attempt < WAIT_MS && pair->server < 0; attempt++) {
        pair->server = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (pair->server < 0) {
            CHECK(errno == EAGAIN, "accept4: %s", strerror(errno));
            usleep(1000);
        }
    }
    CHECK(pair->server >= 0, "no connection to accept");
    event.data.fd = pair->server;
    CHECK(epoll_ctl(pair->epoll, EPOLL_CTL_ADD, pair->server, &event) == 0, "epoll_ctl: %s", strerror(errno));
    CHECK(setsockopt(pair->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
              setsockopt(pair->server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0,
          "TCP_NODELAY: %s", strerror(errno));
    return 0;
}

/* A client of `family` (AF_INET: to 127.0.0.1, AF_INET6: to ::1) connected to the listener; all closed on failure. */
static int connect_pair_from(int family, int listener, uint16_t port, struct pair *pair)
{
    if (open_pair(family, listener, port, pair) == 0)
        return 0;
    pair_close(pair);
    return -1;
}

static int connect_pair(int listener, uint16_t port, struct pair *pair)
{
    return connect_pair_from(AF_INET, listener, port, pair);
}

static int send_all(struct pair *pair, int fd, const void *data, size_t length)
{
    size_t sent = 0;

    while (sent < length) {
        ssize_t n = send(fd, (const char *)data + sent, length - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            pair->pending[pair_index(pair, fd)] &= ~(uint32_t)EPOLLOUT;
            CHECK(pair_wait(pair, fd, EPOLLOUT | EPOLLERR | EPOLLHUP) == 0, "no EPOLLOUT after EAGAIN: %s",
                  strerror(errno));
        } else {
            CHECK(0, "send: %s", n < 0 ? strerror(errno) : "sent nothing");
        }
    }
    return 0;
}

/* Receives exactly `length` bytes; with `length` 0, expects EOF. */
static int recv_exact(struct pair *pair, int fd, void *data, size_t length)
{
    size_t received = 0;
    char eof_probe;
    int want_eof = length == 0;

    for (;;) {
        if (!want_eof && received == length)
            return 0;
        ssize_t n = want_eof ? recv(fd, &eof_probe, 1, 0) : recv(fd, (char *)data + received, length - received, 0);
        if (n > 0) {
            CHECK(!want_eof, "data where EOF was expected");
            received += (size_t)n;
        } else if (n == 0) {
            CHECK(want_eof, "EOF after %zu of %zu bytes", received, length);
            return 0;
        } else if (errno == EAGAIN) {
            pair->pending[pair_index(pair, fd)] &= ~(uint32_t)(EPOLLIN | EPOLLRDHUP);
            CHECK(pair_wait(pair, fd, EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP) == 0,
                  "no EPOLLIN after EAGAIN with %zu of %zu bytes received (%s)", received, length,
                  want_eof ? "waiting for EOF" : "waiting for data");
        } else {
            CHECK(0, "recv: %s", strerror(errno));
        }
    }
}

static void fill(unsigned char *data, size_t length, uint32_t seed)
{
    for (size_t i = 0; i < length; i++)
        data[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static int check_pattern(const unsigned char *data, size_t length, uint32_t seed, size_t offset)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char expected = (unsigned char)(seed * 131u + (offset + i) * 7u + ((offset + i) >> 8));
        CHECK(data[i] == expected, "byte %zu of message %u is %u, expected %u", offset + i, seed, data[i], expected);
    }
    return 0;
}

/* `rounds` request/response exchanges of 1..256 bytes; the server checks each request and answers it mirrored. */
static int ping_pong(struct pair *pair, int rounds)
{
    unsigned char request[256], received[256], response[256];

    for (int round = 0; round < rounds; round++) {
        size_t length = 1 + (size_t)(round * 37) % sizeof(request);
        fill(request, length, (uint32_t)round);
        if (send_all(pair, pair->client, request, length) != 0 || recv_exact(pair, pair->server, received, length))
            return -1;
        CHECK(check_pattern(received, length, (uint32_t)round, 0) == 0, "request %d arrived corrupted", round);
        for (size_t i = 0; i < length; i++)
            response[i] = received[length - 1 - i];
        if (send_all(pair, pair->server, response, length) != 0 || recv_exact(pair, pair->client, received, length))
            return -1;
        for (size_t i = 0; i < length; i++)
            CHECK(received[i] == request[length - 1 - i], "response %d arrived corrupted at byte %zu", round, i);
    }
    return 0;
}

/* ---- independent views of the kernel's state (libbpf directly, not through liflnative) ------------------------ */

#ifdef LIFL_TEST_WITH_LIBBPF
/* How many sock_ops programs are attached to the cgroup; -1 on error. */
static int sockops_attachments(void)
{
    __u32 ids[64];
    __u32 count = 64;
    __u32 flags = 0;
    int fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    int result = bpf_prog_query(fd, BPF_CGROUP_SOCK_OPS, 0, &flags, ids, &count);
    close(fd);
    return result < 0 ? -1 : (int)count;
}

/* The id of a pinned object; 0 when it is not there. */
static __u32 pinned_id(const char *dir, const char *name, int is_map)
{
    char path[512];
    __u32 id = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = bpf_obj_get(path);
    if (fd < 0)
        return 0;
    if (is_map) {
        struct bpf_map_info info = {0};
        __u32 length = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0)
            id = info.id;
    } else {
        struct bpf_prog_info info = {0};
        __u32 length = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0)
            id = info.id;
    }
    close(fd);
    return id;
}

/* Entries of the pinned sockhash; -1 on error. */
static int sockhash_entries(const char *dir)
{
    char path[512];
    unsigned char key[40], next[40];
    int entries = 0;

    snprintf(path, sizeof(path), "%s/silo_socks", dir);
    int fd = bpf_obj_get(path);
    if (fd < 0)
        return -1;
    void *previous = NULL;
    while (bpf_map_get_next_key(fd, previous, next) == 0) {
        entries++;
        memcpy(key, next, sizeof(key));
        previous = key;
    }
    close(fd);
    return entries;
}
#endif

/* ---- tests ---------------------------------------------------------------------------------------------------- */

static int read_stats(lifl_ebpf *ebpf, lifl_ebpf_stats *stats)
{
    int status = lifl_ebpf_get_stats(ebpf, stats);
    CHECK(status == LIFL_OK, "lifl_ebpf_get_stats: %d (%s)", status, strerror(errno));
    return 0;
}

static int test_registered_port_is_redirected(lifl_ebpf *ebpf, int listener, uint16_t port)
{
    lifl_ebpf_stats before, connected, after;
    struct pair pair;

    if (read_stats(ebpf, &before))
        return -1;
    int result = connect_pair(listener, port, &pair);
    if (result == 0)
        result = read_stats(ebpf, &connected);
#ifdef LIFL_TEST_WITH_LIBBPF
    int entries = sockhash_entries(pin_dir);
#endif
    if (result == 0)
        result = ping_pong(&pair, PING_PONGS);
    pair_close(&pair);
    if (result != 0 || read_stats(ebpf, &after))
        return -1;

    uint64_t added = connected.sockets_added - before.sockets_added;
    uint64_t redirected = after.messages_redirected - before.messages_redirected;
    uint64_t passed = after.messages_passed - before.messages_passed;
    uint64_t runs = after.msg_prog_run_count - before.msg_prog_run_count;
    printf("     registered port %u: %llu sockets added, %llu messages redirected, %llu passed, sk_msg ran %llu "
           "times, sock_ops ran %llu times\n",
           port, (unsigned long long)added, (unsigned long long)redirected, (unsigned long long)passed,
           (unsigned long long)runs,
           (unsigned long long)(after.sockops_prog_run_count - before.sockops_prog_run_count));
    CHECK(added >= 2, "sockets_added grew by %llu", (unsigned long long)added);
    CHECK(redirected >= 2 * PING_PONGS, "messages_redirected grew by %llu", (unsigned long long)redirected);
    CHECK(runs >= redirected, "the kernel counted %llu sk_msg runs for %llu redirects", (unsigned long long)runs,
          (unsigned long long)redirected);
#ifdef LIFL_TEST_WITH_LIBBPF
    CHECK(entries >= 2, "the pinned sockhash held %d entries while connected", entries);
    /* Closed sockets leave the sockhash by themselves. */
    int left = -1;
    for (int attempt = 0; attempt < 100 && left != entries - 2; attempt++) {
        left = sockhash_entries(pin_dir);
        if (left != entries - 2)
            usleep(10000);
    }
    CHECK(left == entries - 2, "the sockhash still holds %d of %d entries after close", left, entries);
#endif
    return 0;
}

static int test_unregistered_port_is_left_alone(lifl_ebpf *ebpf, int listener, uint16_t port)
{
    lifl_ebpf_stats before, after;
    struct pair pair;

    if (read_stats(ebpf, &before))
        return -1;
    int result = connect_pair(listener, port, &pair);
    if (result == 0)
        result = ping_pong(&pair, PING_PONGS);
    pair_close(&pair);
    if (result != 0 || read_stats(ebpf, &after))
        return -1;
    CHECK(after.sockets_added == before.sockets_added, "sockets_added grew by %llu",
          (unsigned long long)(after.sockets_added - before.sockets_added));
    CHECK(after.messages_redirected == before.messages_redirected, "messages_redirected grew by %llu",
          (unsigned long long)(after.messages_redirected - before.messages_redirected));
    CHECK(after.messages_passed == before.messages_passed, "messages_passed grew by %llu",
          (unsigned long long)(after.messages_passed - before.messages_passed));
    CHECK(after.msg_prog_run_count == before.msg_prog_run_count, "sk_msg ran %llu times",
          (unsigned long long)(after.msg_prog_run_count - before.msg_prog_run_count));
    CHECK(after.sockops_prog_run_count > before.sockops_prog_run_count,
          "sock_ops did not run for the connection (is the test outside cgroup %s?)", cgroup_path);
    return 0;
}

/*
 * 16 MiB one way, the sender writing until EAGAIN and the receiver reading in odd-sized pieces, each going on only
 * after its edge-triggered epoll event (as .NET does): no stall, no lost or reordered byte.
 */
static int test_bulk_transfer_does_not_stall(lifl_ebpf *ebpf, int listener, uint16_t port)
{
    enum { TOTAL = 16 << 20, WRITE = 65536, READ = 10007 };
    static unsigned char out[WRITE], in[READ];
    lifl_ebpf_stats before, after;
    struct pair pair;
    size_t sent = 0, received = 0;
    unsigned send_blocked = 0;
    int result = -1;

    if (read_stats(ebpf, &before) || connect_pair(listener, port, &pair) != 0)
        return -1;
    pair.pending[0] |= EPOLLOUT;
    pair.pending[1] |= EPOLLIN;
    while (received < TOTAL) {
        while (sent < TOTAL && (pair.pending[0] & EPOLLOUT)) {
            size_t chunk = TOTAL - sent < WRITE ? TOTAL - sent : WRITE;
            for (size_t i = 0; i < chunk; i++)
                out[i] = (unsigned char)((sent + i) * 7u + ((sent + i) >> 8));
            ssize_t n = send(pair.client, out, chunk, MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) {
                pair.pending[0] &= ~(uint32_t)EPOLLOUT;
                send_blocked++;
            } else if (n <= 0) {
                fprintf(stderr, "FAIL bulk send: %s\n", strerror(errno));
                goto out;
            } else {
                sent += (size_t)n;
            }
        }
        while (pair.pending[1] & EPOLLIN) {
            ssize_t n = recv(pair.server, in, READ, 0);
            if (n < 0 && errno == EAGAIN) {
                pair.pending[1] &= ~(uint32_t)EPOLLIN;
            } else if (n <= 0) {
                fprintf(stderr, "FAIL bulk recv after %zu bytes: %s\n", received, n < 0 ? strerror(errno) : "EOF");
                goto out;
            } else {
                if (check_pattern(in, (size_t)n, 0, received) != 0)
                    goto out;
                received += (size_t)n;
            }
        }
        if (received < TOTAL && !(pair.pending[1] & EPOLLIN) && (sent == TOTAL || !(pair.pending[0] & EPOLLOUT))) {
            struct epoll_event ready[4];
            int count = epoll_wait(pair.epoll, ready, 4, WAIT_MS);
            if (count == 0) {
                fprintf(stderr, "FAIL bulk transfer stalled: %zu bytes sent, %zu received, no epoll edge in %d ms\n",
                        sent, received, WAIT_MS);
                goto out;
            }
            for (int i = 0; i < count; i++)
                pair.pending[pair_index(&pair, ready[i].data.fd)] |= ready[i].events;
        }
    }
    result = 0;

out:
    pair_close(&pair);
    if (result != 0 || read_stats(ebpf, &after))
        return -1;
    printf("     bulk: %d MiB, sender blocked (EAGAIN, then EPOLLOUT) %u times, %llu messages redirected, %llu "
           "passed\n",
           TOTAL >> 20, send_blocked, (unsigned long long)(after.messages_redirected - before.messages_redirected),
           (unsigned long long)(after.messages_passed - before.messages_passed));
    CHECK(after.messages_redirected > before.messages_redirected, "the bulk transfer was not redirected");
    return 0;
}

/* Data sent just before close arrives before the EOF, in both directions. */
static int test_close_gives_eof(int listener, uint16_t port)
{
    unsigned char data[100], received[100];

    for (int server_closes = 0; server_closes <= 1; server_closes++) {
        struct pair pair;
        if (connect_pair(listener, port, &pair) != 0) {
            pair_close(&pair);
            return -1;
        }
        int *closing = server_closes ? &pair.server : &pair.client;
        int other = server_closes ? pair.client : pair.server;
        fill(data, sizeof(data), 99);
        int result = send_all(&pair, *closing, data, sizeof(data));
        if (result == 0) {
            close(*closing); /* leaves the epoll set by itself */
            *closing = -1;
            result = recv_exact(&pair, other, received, sizeof(received));
        }
        if (result == 0)
            result = check_pattern(received, sizeof(received), 99, 0);
        if (result == 0)
            result = recv_exact(&pair, other, NULL, 0);
        pair_close(&pair);
        CHECK(result == 0, "the %s's close: data then EOF not seen", server_closes ? "server" : "client");
    }
    return 0;
}

/* A dual-mode IPv6 listener's sockets (IPv4-mapped addresses) meet IPv4 clients; IPv6 clients over ::1 too. */
static int test_ipv6_sockets_are_redirected(lifl_ebpf *ebpf)
{
    uint16_t port;
    int listener = listen_loopback(AF_INET6, &port);
    static const int client_families[] = {AF_INET, AF_INET6};

    CHECK(listener >= 0, "listen on [::]: %s", strerror(errno));
    int status = lifl_ebpf_add_port(ebpf, port);
    if (status != LIFL_OK) {
        close(listener);
        CHECK(0, "lifl_ebpf_add_port(%u): %d", port, status);
    }
    for (size_t i = 0; i < sizeof(client_families) / sizeof(client_families[0]); i++) {
        lifl_ebpf_stats before, after;
        struct pair pair;
        int result = read_stats(ebpf, &before);
        if (result == 0)
            result = connect_pair_from(client_families[i], listener, port, &pair);
        if (result == 0)
            result = ping_pong(&pair, 100);
        pair_close(&pair);
        if (result == 0)
            result = read_stats(ebpf, &after);
        if (result != 0) {
            close(listener);
            return -1;
        }
        const char *what = client_families[i] == AF_INET ? "IPv4 client, dual-mode server" : "IPv6 over ::1";
        printf("     %s: %llu sockets added, %llu messages redirected\n", what,
               (unsigned long long)(after.sockets_added - before.sockets_added),
               (unsigned long long)(after.messages_redirected - before.messages_redirected));
        if (after.sockets_added - before.sockets_added < 2 ||
            after.messages_redirected - before.messages_redirected < 200) {
            close(listener);
            CHECK(0, "%s: not redirected", what);
        }
    }
    close(listener);
    status = lifl_ebpf_remove_port(ebpf, port);
    CHECK(status == LIFL_OK, "lifl_ebpf_remove_port(%u): %d", port, status);
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int measure_rtt(int listener, uint16_t port, const char *what)
{
    static uint64_t samples[RTT_ROUNDS];
    unsigned char message[64];
    struct pair pair;

    if (connect_pair(listener, port, &pair) != 0) {
        pair_close(&pair);
        return -1;
    }
    fill(message, sizeof(message), 7);
    for (int round = 0; round < RTT_ROUNDS; round++) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        if (send_all(&pair, pair.client, message, sizeof(message)) ||
            recv_exact(&pair, pair.server, message, sizeof(message)) ||
            send_all(&pair, pair.server, message, sizeof(message)) ||
            recv_exact(&pair, pair.client, message, sizeof(message))) {
            pair_close(&pair);
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &end);
        samples[round] = (uint64_t)(end.tv_sec - start.tv_sec) * 1000000000u + (uint64_t)end.tv_nsec -
                         (uint64_t)start.tv_nsec;
    }
    pair_close(&pair);
    qsort(samples, RTT_ROUNDS, sizeof(samples[0]), compare_u64);
    printf("     RTT %-28s p50 %6.2f us  p99 %6.2f us  (%d round trips of 64 bytes each way)\n", what,
           samples[RTT_ROUNDS / 2] / 1000.0, samples[RTT_ROUNDS * 99 / 100] / 1000.0, RTT_ROUNDS);
    return 0;
}

static int test_second_open_reuses_the_pins(lifl_ebpf *ebpf)
{
    char error[512] = "";
    lifl_ebpf *second = NULL;
    lifl_ebpf_stats first_stats, second_stats;
#ifdef LIFL_TEST_WITH_LIBBPF
    __u32 prog_before = pinned_id(pin_dir, "redirect_to_peer", 0);
    __u32 map_before = pinned_id(pin_dir, "silo_socks", 1);
    int attached_before = sockops_attachments();
#endif

    int status = lifl_ebpf_open(pin_dir, cgroup_path, &second, error, sizeof(error));
    CHECK(status == LIFL_OK, "second lifl_ebpf_open: %d: %s", status, error);
    int result = read_stats(ebpf, &first_stats) || read_stats(second, &second_stats) ? -1 : 0;
    lifl_ebpf_close(second);
    if (result)
        return -1;
    CHECK(first_stats.sockets_added == second_stats.sockets_added &&
              first_stats.messages_redirected == second_stats.messages_redirected,
          "the two handles read different counters");
#ifdef LIFL_TEST_WITH_LIBBPF
    CHECK(prog_before != 0 && pinned_id(pin_dir, "redirect_to_peer", 0) == prog_before, "the program was replaced");
    CHECK(map_before != 0 && pinned_id(pin_dir, "silo_socks", 1) == map_before, "the sockhash was replaced");
    CHECK(sockops_attachments() == attached_before, "the second open attached sock_ops again");
#endif
    /* Another cgroup than the one the pins are attached to is refused, not silently ignored. */
    status = lifl_ebpf_open(pin_dir, "/proc", &second, error, sizeof(error));
    CHECK(status != LIFL_OK && second == NULL, "open with a non-cgroup path succeeded");
    printf("     open with /proc: %s\n", error);
    char child[sizeof(cgroup_path) + 64];
    snprintf(child, sizeof(child), "%s/lifl-ebpf-test-%d", cgroup_path, (int)getpid());
    CHECK(mkdir(child, 0755) == 0, "mkdir %s: %s", child, strerror(errno));
    status = lifl_ebpf_open(pin_dir, child, &second, error, sizeof(error));
    rmdir(child);
    CHECK(status == LIFL_E_INVAL && second == NULL, "open with another cgroup: %d", status);
    printf("     open with another cgroup: %s\n", error);
    return 0;
}

/* A load that fails (here: no cgroup v2 directory) says why and leaves no pins, attachments or descriptors. */
static int test_failed_load_leaves_nothing(void)
{
    char error[512] = "";
    char fresh[300];
    lifl_ebpf *ebpf = NULL;
    struct stat st;
#ifdef LIFL_TEST_WITH_LIBBPF
    int attached_before = sockops_attachments();
#endif

    snprintf(fresh, sizeof(fresh), "%s-failed", pin_dir);
    int status = lifl_ebpf_open(fresh, "/nonexistent-cgroup", &ebpf, error, sizeof(error));
    CHECK(status == LIFL_E_SYS && ebpf == NULL, "open with a missing cgroup: %d", status);
    CHECK(strstr(error, "/nonexistent-cgroup") && strstr(error, strerror(ENOENT)), "error message: %s", error);
    printf("     open with a missing cgroup: %s\n", error);
    CHECK(stat(fresh, &st) < 0 && errno == ENOENT, "%s was left behind", fresh);
#ifdef LIFL_TEST_WITH_LIBBPF
    CHECK(sockops_attachments() == attached_before, "a failed open left sock_ops attached");
#endif
    return 0;
}

/* Processes of one node opening a fresh pin directory at once: exactly one of them loads and attaches. */
static int test_racing_opens_load_once(void)
{
#ifdef LIFL_TEST_WITH_LIBBPF
    int attached_before = sockops_attachments();
    CHECK(attached_before >= 0, "bpf_prog_query on %s: %s", cgroup_path, strerror(errno));
#endif
    int gate[2];
    pid_t children[RACING_OPENERS];

    CHECK(pipe(gate) == 0, "pipe: %s", strerror(errno));
    for (int i = 0; i < RACING_OPENERS; i++) {
        children[i] = fork();
        CHECK(children[i] >= 0, "fork: %s", strerror(errno));
        if (children[i] == 0) {
            char byte, error[512] = "";
            lifl_ebpf *ebpf = NULL;
            close(gate[1]);
            if (read(gate[0], &byte, 1) < 0)
                _exit(2);
            int status = lifl_ebpf_open(racing_pin_dir, cgroup_path, &ebpf, error, sizeof(error));
            if (status != LIFL_OK)
                fprintf(stderr, "racing open: %s\n", error);
            lifl_ebpf_close(ebpf);
            _exit(status == LIFL_OK ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]); /* releases them all at once */
    int failed = 0;
    for (int i = 0; i < RACING_OPENERS; i++) {
        int wstatus;
        if (waitpid(children[i], &wstatus, 0) < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
            failed++;
    }
    CHECK(failed == 0, "%d of %d racing opens failed", failed, RACING_OPENERS);
#ifdef LIFL_TEST_WITH_LIBBPF
    int attached = sockops_attachments();
    CHECK(attached == attached_before + 1, "%d racing opens attached sock_ops %d times", RACING_OPENERS,
          attached - attached_before);
#endif
    /* The processes are gone; the pins keep it all attached until unpinned. */
    struct stat st;
    CHECK(stat(racing_pin_dir, &st) == 0, "%s is gone after its processes exited", racing_pin_dir);
    int status = lifl_ebpf_unpin(racing_pin_dir, cgroup_path);
    CHECK(status == LIFL_OK, "lifl_ebpf_unpin: %d (%s)", status, strerror(errno));
    CHECK(stat(racing_pin_dir, &st) < 0 && errno == ENOENT, "%s is still there after unpin", racing_pin_dir);
#ifdef LIFL_TEST_WITH_LIBBPF
    CHECK(sockops_attachments() == attached_before, "sock_ops still attached after unpin");
#endif
    return 0;
}

/*
 * Unpinning with a connection open: the message already redirected into the peer's queue is delivered and the
 * connection goes on working (its sockets stay in the now unpinned sockhash until they close: taking them out
 * would drop what was queued to them); a connection made after the unpin is no longer tracked or redirected.
 */
static int test_unpin_stops_new_connections_only(lifl_ebpf *ebpf, int listener, uint16_t port)
{
    unsigned char data[200], received[200];
    lifl_ebpf_stats before, after;
    struct pair old_pair, new_pair;
#ifdef LIFL_TEST_WITH_LIBBPF
    int attached_before = sockops_attachments();
#endif

    new_pair.client = new_pair.server = new_pair.epoll = -1;
    if (connect_pair(listener, port, &old_pair) != 0) {
        pair_close(&old_pair);
        return -1;
    }
    fill(data, sizeof(data), 42);
    int result = send_all(&old_pair, old_pair.client, data, sizeof(data));
    if (result == 0) {
        int status = lifl_ebpf_unpin(pin_dir, cgroup_path);
        if (status != LIFL_OK) {
            fprintf(stderr, "FAIL lifl_ebpf_unpin: %d (%s)\n", status, strerror(errno));
            result = -1;
        }
    }
    if (result == 0)
        result = recv_exact(&old_pair, old_pair.server, received, sizeof(received));
    if (result == 0)
        result = check_pattern(received, sizeof(received), 42, 0);
    if (result == 0)
        result = ping_pong(&old_pair, 100);
    if (result == 0)
        result = read_stats(ebpf, &before);
    if (result == 0)
        result = connect_pair(listener, port, &new_pair);
    if (result == 0)
        result = ping_pong(&new_pair, 100);
    if (result == 0)
        result = read_stats(ebpf, &after);
    pair_close(&old_pair);
    pair_close(&new_pair);
    if (result != 0)
        return -1;
    CHECK(after.sockets_added == before.sockets_added, "a connection made after unpin was added to the sockhash");
    CHECK(after.msg_prog_run_count == before.msg_prog_run_count,
          "sk_msg ran %llu times for a connection made after unpin",
          (unsigned long long)(after.msg_prog_run_count - before.msg_prog_run_count));
    struct stat st;
    CHECK(stat(pin_dir, &st) < 0 && errno == ENOENT, "%s is still there after unpin", pin_dir);
#ifdef LIFL_TEST_WITH_LIBBPF
    CHECK(sockops_attachments() == attached_before - 1, "sock_ops still attached after unpin");
#endif
    return 0;
}

/* Silos killed with SIGKILL never unregister their ports: registering drops the ports nothing holds any more (so the
 * bounded map never fills with them, and no stale port captures another program's sockets), and keeps those in use
 * (the live silo's). */
static int test_full_port_map_drops_stale_ports(lifl_ebpf *ebpf, uint16_t live_port)
{
    char path[512];
    int registered = 0;

    snprintf(path, sizeof(path), "%s/silo_ports", pin_dir);
    int ports_fd = bpf_obj_get(path);
    CHECK(ports_fd >= 0, "bpf_obj_get %s: %s", path, strerror(errno));
    __u8 value;
    uint16_t first = live_port == 20000 ? 20001 : 20000;
    int stale_kept = 0;
    for (uint16_t port = 20000; port < 21100; port++) {
        if (port == live_port)
            continue;
        int status = lifl_ebpf_add_port(ebpf, port);
        CHECK(status == LIFL_OK, "lifl_ebpf_add_port(%u) after %d ports: %d (%s)", port, registered, status, strerror(errno));
        /* Nothing listens on the ports registered before this one: they are gone at once, long before the map is full. */
        if (++registered == 2)
            stale_kept = bpf_map_lookup_elem(ports_fd, &first, &value) == 0;
    }
    uint16_t last = 21099;
    int live = bpf_map_lookup_elem(ports_fd, &live_port, &value) == 0;
    int newest = bpf_map_lookup_elem(ports_fd, &last, &value) == 0;
    for (uint16_t port = 20000; port < 21100; port++)
        if (port != live_port)
            lifl_ebpf_remove_port(ebpf, port);
    close(ports_fd);
    CHECK(live, "the live silo's port %u was pruned", live_port);
    CHECK(newest, "the last port registered is missing");
    CHECK(!stale_kept, "the stale port %u was still registered after the next registration", first);
    return 0;
}

static int run(lifl_ebpf *ebpf)
{
    uint16_t silo_port, other_port;
    int silo_listener = listen_loopback(AF_INET, &silo_port);
    int other_listener = listen_loopback(AF_INET, &other_port);
    int result = -1;

    if (silo_listener < 0 || other_listener < 0) {
        fprintf(stderr, "FAIL listen on 127.0.0.1: %s\n", strerror(errno));
        goto out;
    }
    int status = lifl_ebpf_add_port(ebpf, silo_port);
    if (status != LIFL_OK) {
        fprintf(stderr, "FAIL lifl_ebpf_add_port(%u): %d (%s)\n", silo_port, status, strerror(errno));
        goto out;
    }
    printf("     registered port %u, unregistered port %u\n", silo_port, other_port);

    RUN(test_registered_port_is_redirected(ebpf, silo_listener, silo_port));
    RUN(test_unregistered_port_is_left_alone(ebpf, other_listener, other_port));
    RUN(test_ipv6_sockets_are_redirected(ebpf));
    RUN(test_bulk_transfer_does_not_stall(ebpf, silo_listener, silo_port));
    RUN(test_close_gives_eof(silo_listener, silo_port));
    RUN(test_close_gives_eof(other_listener, other_port));
    RUN(measure_rtt(silo_listener, silo_port, "redirected (registered port)"));
    RUN(measure_rtt(other_listener, other_port, "TCP/IP (unregistered port)"));
    RUN(test_full_port_map_drops_stale_ports(ebpf, silo_port));
    RUN(test_second_open_reuses_the_pins(ebpf));
    RUN(test_failed_load_leaves_nothing());
    RUN(test_racing_opens_load_once());
    RUN(test_unpin_stops_new_connections_only(ebpf, silo_listener, silo_port));
    result = 0;

out:
    if (silo_listener >= 0)
        close(silo_listener);
    if (other_listener >= 0)
        close(other_listener);
    return result;
}

/* Open descriptors of this process: the library must not leak any, on success or on failure paths. */
static int open_fds(void)
{
    DIR *fds = opendir("/proc/self/fd");
    int count = 0;

    if (!fds)
        return -1;
    while (readdir(fds))
        count++;
    closedir(fds);
    return count;
}

static int find_cgroup2(void)
{
    char device[256], mountpoint[4096], type[64];
    FILE *mounts = fopen("/proc/mounts", "r");

    if (!mounts)
        return -1;
    int found = -1;
    while (fscanf(mounts, "%255s %4095s %63s %*[^\n]", device, mountpoint, type) == 3) {
        if (strcmp(type, "cgroup2") == 0) {
            snprintf(cgroup_path, sizeof(cgroup_path), "%s", mountpoint);
            found = 0;
            break;
        }
    }
    fclose(mounts);
    return found;
}

int main(void)
{
    char error[512] = "";
    lifl_ebpf *ebpf = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("SKIP: the eBPF test needs root (CAP_BPF, CAP_NET_ADMIN, mount)\n");
        return SKIP_CODE;
    }
    if (find_cgroup2() != 0) {
        printf("SKIP: no cgroup v2 hierarchy in /proc/mounts\n");
        return SKIP_CODE;
    }
    snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/lifl-ebpf-test-%d", (int)getpid());
    snprintf(racing_pin_dir, sizeof(racing_pin_dir), "/sys/fs/bpf/lifl-ebpf-test-%d-race", (int)getpid());
    printf("     cgroup %s, pins under %s\n", cgroup_path, pin_dir);

    int fds_before = open_fds();
    int status = lifl_ebpf_open(pin_dir, cgroup_path, &ebpf, error, sizeof(error));
    if (status == LIFL_E_UNSUPPORTED) {
        printf("SKIP: %s\n", error);
        return SKIP_CODE;
    }
    if (status != LIFL_OK) {
        fprintf(stderr, "FAIL lifl_ebpf_open: %d: %s\n", status, error);
        return 1;
    }

    int result = run(ebpf);

    /* Whatever failed, leave nothing attached to the node. */
    lifl_ebpf_close(ebpf);
    if (lifl_ebpf_unpin(racing_pin_dir, cgroup_path) != LIFL_OK) {
        fprintf(stderr, "FAIL cleanup: unpin %s: %s\n", racing_pin_dir, strerror(errno));
        result = -1;
    }
    if (lifl_ebpf_unpin(pin_dir, cgroup_path) != LIFL_OK) {
        fprintf(stderr, "FAIL cleanup: unpin %s: %s\n", pin_dir, strerror(errno));
        result = -1;
    }
    int fds_after = open_fds();
    if (fds_after != fds_before) {
        fprintf(stderr, "FAIL %d descriptors open before, %d after everything was closed\n", fds_before, fds_after);
        result = -1;
    }
    printf(result == 0 ? "PASS\n" : "FAILED\n");
    return result == 0 ? 0 : 1;
}
