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

    /// <summary>When the callee's activation started running it (<see cref="Stopwatch"/> ticks), for its latency statistics.</summary>
    internal long StartedTimestamp { get; set; }

    /// <summary>How many times the call was re-routed after reaching a silo or activation that no longer hosts the grain.</summary>
    internal int ForwardCount { get; set; }

    /// <summary>Where the response goes when the caller is in another process; null for a local caller.</summary>
    internal IResponseSink? ResponseSink { get; set; }

    /// <summary>The caller's correlation id, for a request received from another process.</summary>
    internal long IncomingCorrelationId { get; set; }

    /// <summary>
    /// Places among its process's incoming transfers that the buffers of this request (received from a client) hold
    /// until it is answered; the connection that read it gives them back.
    /// </summary>
    internal int HeldTransferPlaces { get; set; }

    /// <summary>The correlation id under which this request was last sent to another process.</summary>
    internal long OutgoingCorrelationId { get; set; }

    /// <summary>
    /// Shared-buffer references this request owns: those its argument copies or its deserialization took. The
    /// callee takes them over when the request is invoked here; otherwise they are dropped when it completes.
    /// </summary>
    private List<Dataplane.SharedBuffer>? _ownedBuffers;

    /// <summary>Starts collecting the shared-buffer references the argument copies take (generated proxies).</summary>
    public List<Dataplane.SharedBuffer>? BeginArgumentCopy() => Dataplane.BufferCapture.Begin();

    /// <summary>Ends <see cref="BeginArgumentCopy"/>: this request owns what was collected.</summary>
    public void EndArgumentCopy(List<Dataplane.SharedBuffer>? outer) => AdoptBuffers(Dataplane.BufferCapture.End(outer));

    internal void AdoptBuffers(List<Dataplane.SharedBuffer>? buffers)
    {
        if (buffers is not null)
        {
            Dataplane.BufferCapture.DisposeAll(Interlocked.Exchange(ref _ownedBuffers, buffers));
        }
    }

    /// <summary>The callee is about to run: it owns the arguments' buffers from now on.</summary>
    private protected void HandOverBuffers() => Interlocked.Exchange(ref _ownedBuffers, null);

    /// <summary>The request is done without its arguments reaching a callee here: drop the references it owns.</summary>
    internal void ReleaseBuffers()
    {
        if (_ownedBuffers is not null)
        {
            Dataplane.BufferCapture.DisposeAll(Interlocked.Exchange(ref _ownedBuffers, null));
        }
    }

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
    /// <param name="batch">When given, the caller's continuation is not run here but staged in the batch, which
    /// runs the continuations of everything received in one read on the thread pool (so a caller that computes
    /// after a call cannot stall the connection, and a burst of responses costs one thread hand-off).</param>
    /// <returns>False when the request was already answered (a timeout won): the result read is nobody's.</returns>
    internal abstract bool CompleteFromWire(ref Reader reader, CompletionBatch? batch);

    /// <summary>Runs the caller's continuation of a result or error staged by <see cref="CompleteFromWire"/>.</summary>
    internal abstract void RunStagedCompletion();

    /// <summary>Stages an error for <see cref="RunStagedCompletion"/>; false if the request was already answered.</summary>
    internal abstract bool StageError(Exception error);

    /// <summary>Runs the method on <paramref name="target"/> inside the current turn; completion is reported to the scheduler.</summary>
    internal abstract void Invoke(object target);

    /// <summary>Answers the caller with an error without running the method (routing failure, timeout, deadlock).</summary>
    internal abstract void Fail(Exception error);

    /// <summary>Claims the right to answer; only the first of result, error and timeout wins.</summary>
    private protected bool TryClaimCompletion()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        ReleaseBuffers();
        return true;
    }

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

/// <summary>Caller continuations of responses received together, run as one thread-pool work item.</summary>
internal sealed class CompletionBatch : IThreadPoolWorkItem
{
    private readonly List<RequestBase> _staged = [];

    public int Count => _staged.Count;

    public void Add(RequestBase request) => _staged.Add(request);

    /// <summary>Queues the batch if it has anything; returns whether it did (the batch then belongs to the pool).</summary>
    public bool TrySchedule()
    {
        if (_staged.Count == 0)
        {
            return false;
        }

        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        return true;
    }

    public void Execute()
    {
        foreach (var request in _staged)
        {
            request.RunStagedCompletion();
        }
    }
}

/// <summary>Receives the outcome of a request whose caller is in another process. Implemented by the transport.</summary>
internal interface IResponseSink
{
    /// <param name="resultIsPrivate">True when nothing else holds the result (it was just read from the wire), so
    /// it need not be copied before it is serialized.</param>
    void OnResult<T>(Request<T> request, T result, bool resultIsPrivate);

    void OnError(RequestBase request, Exception error);
}
