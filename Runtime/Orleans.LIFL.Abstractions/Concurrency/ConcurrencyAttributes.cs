namespace Orleans.LIFL.Concurrency;

/// <summary>
/// The grain class accepts a new request while another is waiting at an <c>await</c>. Turns still never run in
/// parallel: one thread at a time executes grain code.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class ReentrantAttribute : Attribute;

/// <summary>The interface method may interleave with any other request of the grain, reentrant or not.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AlwaysInterleaveAttribute : Attribute;

/// <summary>
/// The interface method does not change grain state: read-only requests of a non-reentrant grain may interleave
/// with each other, never with a request that is not read-only.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ReadOnlyAttribute : Attribute;

/// <summary>
/// The caller does not wait for the grain: the call completes when it is sent and errors are only logged.
/// Only methods returning <see cref="Task"/> or <see cref="ValueTask"/> may be one-way.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OneWayAttribute : Attribute;

/// <summary>
/// Stateless worker: the runtime keeps up to <see cref="MaxLocalWorkers"/> activations of one identity on every silo
/// that receives calls for it and spreads calls over them. They are never registered in the grain directory.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class StatelessWorkerAttribute : Attribute
{
    public StatelessWorkerAttribute()
    {
        MaxLocalWorkers = Environment.ProcessorCount;
    }

    public StatelessWorkerAttribute(int maxLocalWorkers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLocalWorkers, 1);
        MaxLocalWorkers = maxLocalWorkers;
    }

    public int MaxLocalWorkers { get; }
}

/// <summary>Overrides the call timeout for one interface method.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ResponseTimeoutAttribute : Attribute
{
    /// <param name="timeout">A <see cref="TimeSpan"/> in its invariant text form, e.g. "00:00:05".</param>
    public ResponseTimeoutAttribute(string timeout)
    {
        Timeout = TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture);
    }

    public TimeSpan Timeout { get; }
}
