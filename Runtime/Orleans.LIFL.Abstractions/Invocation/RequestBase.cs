using System.ComponentModel;
using System.Diagnostics;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Invocation;

/// <summary>
/// One grain call: the generated subclass holds the (already copied) arguments and knows how to invoke the method on
/// the target; this base carries what the runtime needs to route, schedule, time out and answer it. The request is
/// also the turn context of the code it runs (see <see cref="TurnContext"/>).
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public abstract class RequestBase : TurnContext
{
    private int _completed;

    public abstract MethodDescriptor Method { get; }

    /// <summary>The grain this call is addressed to.</summary>
    public GrainId TargetId { get; internal set; }

    /// <summary>When the caller gives up (<see cref="Stopwatch"/> ticks), or 0 for none.</summary>
    internal long DeadlineTimestamp { get; set; }

    /// <summary>When the call was sent (<see cref="Stopwatch"/> ticks).</summary>
    internal long SentTimestamp { get; set; }

    /// <summary>How many times the call was re-routed after reaching a silo or activation that no longer hosts the grain.</summary>
    internal int ForwardCount { get; set; }

    /// <summary>Where the response goes when the caller is in another process; null for a local caller.</summary>
    internal IResponseSink? ResponseSink { get; set; }

    /// <summary>The caller's correlation id, for a request received from another process.</summary>
    internal long IncomingCorrelationId { get; set; }

    /// <summary>The correlation id under which this request was last sent to another process.</summary>
    internal long OutgoingCorrelationId { get; set; }

    /// <summary>True once a result or an error has been delivered to the caller (or a timeout fired).</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    internal bool IsExpired(long now) => DeadlineTimestamp != 0 && now >= DeadlineTimestamp;

    /// <summary>The object that implements the method: the grain itself or one of its extensions.</summary>
    public virtual object ResolveTarget(IGrainContext context) =>
        context.GrainInstance ?? throw new InvalidOperationException($"Activation {context.GrainId} has no grain instance.");

    /// <summary>Writes the arguments (generated per method; a method without arguments writes only the end tag).</summary>
    public virtual void WriteArguments(ref Writer writer) => writer.WriteEndTag();

    /// <summary>Reads the arguments written by <see cref="WriteArguments"/> (unknown ones are skipped).</summary>
    public virtual void ReadArguments(ref Reader reader)
    {
        var fields = new TagReader(ref reader, WireType.TagDelimited, "arguments");
        while (fields.Next(ref reader, out _, out var wire))
        {
            reader.SkipField(wire);
        }
    }

    /// <summary>Completes this (caller-side) request with a result read from the wire.</summary>
    /// <param name="continueAsynchronously">Run the caller's continuation on the thread pool rather than on the
    /// calling (network) thread, so a caller that computes after a call cannot stall the connection.</param>
    internal abstract void CompleteFromWire(ref Reader reader, bool continueAsynchronously);

    /// <summary>Runs the method on <paramref name="target"/> inside the current turn; completion is reported to the scheduler.</summary>
    internal abstract void Invoke(object target);

    /// <summary>Answers the caller with an error without running the method (routing failure, timeout, deadlock).</summary>
    internal abstract void Fail(Exception error);

    /// <summary>Claims the right to answer; only the first of result, error and timeout wins.</summary>
    private protected bool TryClaimCompletion() => Interlocked.Exchange(ref _completed, 1) == 0;

    /// <summary>Reports the end of the invocation to the activation, then answers the caller.</summary>
    private protected void OnInvocationFinished(Exception? error)
    {
        Scheduler?.OnRequestCompleted(this, error);
    }

    /// <summary>Runs <paramref name="deliver"/> with no turn context installed, so caller continuations that run
    /// inline never see the callee's context.</summary>
    private protected static void OutsideTurn<TState>(Action<TState> deliver, TState state)
    {
        var current = Current;
        if (current is null)
        {
            deliver(state);
            return;
        }

        SetSynchronizationContext(null);
        try
        {
            deliver(state);
        }
        finally
        {
            SetSynchronizationContext(current);
        }
    }

    public override string ToString() => $"{Method.FullName} to {TargetId}";

    /// <summary>Copies a result for a local caller so the callee can never mutate what the caller holds.</summary>
    private protected static T CopyResult<T>(T value) => DeepCopier<T>.Copy(value);
}

/// <summary>Receives the outcome of a request whose caller is in another process. Implemented by the transport.</summary>
internal interface IResponseSink
{
    /// <param name="resultIsPrivate">True when nothing else holds the result (it was just read from the wire), so
    /// it need not be copied before it is serialized.</param>
    void OnResult<T>(Request<T> request, T result, bool resultIsPrivate);

    void OnError(RequestBase request, Exception error);
}
