using Microsoft.Extensions.Options;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>The node-wide dataplane of a silo ("Lifl:Dataplane"): its shared pool and the eBPF local links.</summary>
public sealed class DataplaneOptions
{
    /// <summary>Open the node's shared pool at start-up (without it, shared buffers cannot cross this silo's links).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The pool's name on this node; every silo of the cluster on the node maps it. Default: lifl-CLUSTERID.</summary>
    public string? PoolName { get; set; }

    /// <summary>The pool's data area when this silo creates it (address space; memory is used as buffers are written).</summary>
    public long PoolCapacity { get; set; } = SharedBufferPool.DefaultCapacity;

    /// <summary>
    /// Which node this process is on: processes with the same node id and pool name exchange descriptors; others
    /// stream the bytes. Default: this machine's /etc/machine-id (or its host name).
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>Redirect messages between this node's silos with eBPF (sock_ops + sk_msg); falls back to TCP when it cannot.</summary>
    public bool Ebpf { get; set; } = true;

    /// <summary>The cgroup v2 directory the sock_ops program attaches to. Default: where cgroup2 is mounted.</summary>
    public string? CgroupPath { get; set; }

    /// <summary>
    /// Where the eBPF programs are pinned, shared by every silo of the node whatever its cluster (one program pair
    /// per node, not per cluster: each attached sock_ops program runs for every connection of the machine).
    /// Default: <see cref="DefaultBpfPinDirectory"/>.
    /// </summary>
    public string? BpfPinDirectory { get; set; }

    public const string DefaultBpfPinDirectory = "/sys/fs/bpf/lifl";

    /// <summary>
    /// Buffers streamed from other nodes received at once by all the processes of this node that share its pool
    /// (each is staged whole in the pool until its last byte is in, and an update to an aggregator until it is
    /// folded); further senders wait. Default: the cores, at least 2.
    /// </summary>
    public int? MaxIncomingTransfers { get; set; }

    /// <summary>How often the silo reclaims the buffers of the node's processes that died.</summary>
    public TimeSpan RecoveryPeriod { get; set; } = TimeSpan.FromSeconds(1);

    internal static string DefaultNodeId()
    {
        try
        {
            var id = File.ReadAllText("/etc/machine-id").Trim();
            if (id.Length > 0)
            {
                return id;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return Environment.MachineName;
    }
}

internal sealed class DataplaneOptionsValidator : IValidateOptions<DataplaneOptions>
{
    public ValidateOptionsResult Validate(string? name, DataplaneOptions options)
    {
        var errors = new List<string>();
        if (options.PoolCapacity < 1L << 20)
        {
            errors.Add($"DataplaneOptions.PoolCapacity {options.PoolCapacity} is below 1 MiB.");
        }

        if (options.PoolName is { } pool && !System.Text.RegularExpressions.Regex.IsMatch(pool, "^[A-Za-z0-9._-]{1,100}$"))
        {
            errors.Add($"DataplaneOptions.PoolName '{pool}' must be 1 to 100 letters, digits, '.', '-' or '_'.");
        }

        if (options.NodeId is { Length: 0 })
        {
            errors.Add("DataplaneOptions.NodeId must not be empty (leave it unset for this machine's id).");
        }

        if (options.MaxIncomingTransfers is < 1)
        {
            errors.Add($"DataplaneOptions.MaxIncomingTransfers {options.MaxIncomingTransfers} must be at least 1.");
        }

        if (options.RecoveryPeriod <= TimeSpan.Zero)
        {
            errors.Add($"DataplaneOptions.RecoveryPeriod {options.RecoveryPeriod} must be positive.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
