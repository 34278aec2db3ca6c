using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// This process's part of the node's dataplane (a silo's or a client's), as grains and host code (the dashboard)
/// see it: the shared pool, which node it is on, and whether eBPF redirection carries a silo's links to the node's
/// other silos.
/// </summary>
public interface INodeDataplane
{
    /// <summary>The node id silos compare to decide between descriptors (same node) and streaming (another node).</summary>
    string NodeId { get; }

    string PoolName { get; }

    /// <summary>The node's shared pool, or null when the dataplane is off or the pool could not be opened.</summary>
    SharedBufferPool? Pool { get; }

    /// <summary>True when this silo's port is redirected by the node's eBPF programs.</summary>
    bool EbpfActive { get; }

    /// <summary>Why eBPF redirection is not in effect (null while it is, or before the silo's port asked for it).</summary>
    string? EbpfUnavailableReason { get; }

    /// <summary>The node-wide in-kernel counters and the kernel's run counts of the programs; null without eBPF.</summary>
    EbpfStatistics? GetEbpfStatistics();
}
