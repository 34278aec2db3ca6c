// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket redirection between silos of one node. track_silo_sockets (sock_ops, attached to a cgroup v2
 * directory) puts every TCP socket whose local or remote port is in silo_ports into silo_socks when it
 * connects; redirect_to_peer (sk_msg, attached to silo_socks) then hands each message sent on such a socket
 * straight to the receive queue of its peer socket, skipping the TCP/IP stack. A message whose peer is not in
 * silo_socks (a silo on another node) takes the ordinary path.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define AF_INET 2
#define AF_INET6 10

/*
 * One end of a connection as seen from its socket. Addresses are IPv6 in network byte order, IPv4 as the
 * IPv4-mapped ::ffff:a.b.c.d, so that an IPv4 socket and a dual-mode IPv6 socket of the same connection agree.
 * Ports are in host byte order. No padding: the whole key is hashed.
 */
struct silo_sock_key {
    __u32 local_ip[4];
    __u32 remote_ip[4];
    __u32 local_port;
    __u32 remote_port;
};

enum redirect_counter {
    SOCKETS_ADDED = 0,
    MESSAGES_REDIRECTED = 1,
    MESSAGES_PASSED = 2,
    REDIRECT_COUNTERS = 3,
};

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, struct silo_sock_key);
    __type(value, __u64); /* 8 bytes, so that a lookup from user space returns the socket cookie */
} silo_socks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u16); /* host byte order */
    __type(value, __u8);
} silo_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, REDIRECT_COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
} redirect_stats SEC(".maps");

static __always_inline void count(__u32 counter)
{
    __u64 *value = bpf_map_lookup_elem(&redirect_stats, &counter);

    /* Atomic although per CPU: a preemptible kernel may run another program on this CPU in between. */
    if (value)
        __sync_fetch_and_add(value, 1);
}

static __always_inline int port_is_silo(__u32 port)
{
    __u16 key = (__u16)port;

    return bpf_map_lookup_elem(&silo_ports, &key) != 0;
}

static __always_inline void set_mapped_ipv4(__u32 ip[4], __u32 ipv4)
{
    ip[0] = 0;
    ip[1] = 0;
    ip[2] = bpf_htonl(0x0000ffff);
    ip[3] = ipv4;
}

/* The key of the socket sock_ops runs for. local_port is in host byte order, remote_port in network byte order. */
static __always_inline int key_of_socket(const struct bpf_sock_ops *ops, struct silo_sock_key *key)
{
    if (ops->family == AF_INET) {
        set_mapped_ipv4(key->local_ip, ops->local_ip4);
        set_mapped_ipv4(key->remote_ip, ops->remote_ip4);
    } else if (ops->family == AF_INET6) {
        key->local_ip[0] = ops->local_ip6[0];
        key->local_ip[1] = ops->local_ip6[1];
        key->local_ip[2] = ops->local_ip6[2];
        key->local_ip[3] = ops->local_ip6[3];
        key->remote_ip[0] = ops->remote_ip6[0];
        key->remote_ip[1] = ops->remote_ip6[1];
        key->remote_ip[2] = ops->remote_ip6[2];
        key->remote_ip[3] = ops->remote_ip6[3];
    } else {
        return 0;
    }
    key->local_port = ops->local_port;
    /* The kernel loads the big-endian 16-bit port into the upper half of the 32-bit field: a full swap. */
    key->remote_port = bpf_ntohl(ops->remote_port);
    return 1;
}

/* The key under which the peer of the sending socket is stored: this socket's key with both ends swapped. */
static __always_inline int key_of_peer(const struct sk_msg_md *msg, struct silo_sock_key *key)
{
    if (msg->family == AF_INET) {
        set_mapped_ipv4(key->local_ip, msg->remote_ip4);
        set_mapped_ipv4(key->remote_ip, msg->local_ip4);
    } else if (msg->family == AF_INET6) {
        key->local_ip[0] = msg->remote_ip6[0];
        key->local_ip[1] = msg->remote_ip6[1];
        key->local_ip[2] = msg->remote_ip6[2];
        key->local_ip[3] = msg->remote_ip6[3];
        key->remote_ip[0] = msg->local_ip6[0];
        key->remote_ip[1] = msg->local_ip6[1];
        key->remote_ip[2] = msg->local_ip6[2];
        key->remote_ip[3] = msg->local_ip6[3];
    } else {
        return 0;
    }
    key->local_port = bpf_ntohl(msg->remote_port);
    key->remote_port = msg->local_port;
    return 1;
}

SEC("sockops")
int track_silo_sockets(struct bpf_sock_ops *ops)
{
    struct silo_sock_key key;

    if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
        return 1;
    if (!key_of_socket(ops, &key))
        return 1;
    if (!port_is_silo(key.local_port) && !port_is_silo(key.remote_port))
        return 1;
    if (bpf_sock_hash_update(ops, &silo_socks, &key, BPF_ANY) == 0)
        count(SOCKETS_ADDED);
    return 1;
}

SEC("sk_msg")
int redirect_to_peer(struct sk_msg_md *msg)
{
    struct silo_sock_key peer;

    /* Without a peer in silo_socks the helper changes nothing and says SK_DROP; the message then takes TCP/IP. */
    if (key_of_peer(msg, &peer) && bpf_msg_redirect_hash(msg, &silo_socks, &peer, BPF_F_INGRESS) == SK_PASS) {
        count(MESSAGES_REDIRECTED);
        return SK_PASS;
    }
    count(MESSAGES_PASSED);
    return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
