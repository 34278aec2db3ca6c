/* The eBPF API of a build without eBPF (LIFL_WITH_EBPF off, or clang, bpftool or libbpf missing). */
#include "lifl_native.h"

#include <stdio.h>

#ifndef LIFL_EBPF_UNSUPPORTED_REASON
#define LIFL_EBPF_UNSUPPORTED_REASON "unknown reason"
#endif

int lifl_ebpf_open(const char *pin_dir, const char *cgroup_path, lifl_ebpf **out, char *error, size_t error_len)
{
    (void)pin_dir;
    (void)cgroup_path;
    if (out)
        *out = NULL;
    if (error && error_len)
        snprintf(error, error_len, "built without eBPF: %s", LIFL_EBPF_UNSUPPORTED_REASON);
    return LIFL_E_UNSUPPORTED;
}

int lifl_ebpf_add_port(lifl_ebpf *ebpf, uint16_t port)
{
    (void)ebpf;
    (void)port;
    return LIFL_E_UNSUPPORTED;
}

int lifl_ebpf_remove_port(lifl_ebpf *ebpf, uint16_t port)
{
    (void)ebpf;
    (void)port;
    return LIFL_E_UNSUPPORTED;
}

int lifl_ebpf_get_stats(lifl_ebpf *ebpf, lifl_ebpf_stats *out)
{
    (void)ebpf;
    (void)out;
    return LIFL_E_UNSUPPORTED;
}

void lifl_ebpf_close(lifl_ebpf *ebpf)
{
    (void)ebpf;
}

int lifl_ebpf_unpin(const char *pin_dir, const char *cgroup_path)
{
    (void)pin_dir;
    (void)cgroup_path;
    return LIFL_E_UNSUPPORTED;
}
