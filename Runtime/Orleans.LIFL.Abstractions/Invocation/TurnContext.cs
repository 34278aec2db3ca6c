namespace Orleans.LIFL.Invocation;

/// <summary>
/// The context a piece of grain code runs in: a request, a timer tick or the activation's own life-cycle work.
/// It is installed as <see cref="SynchronizationContext.Current"/> while a turn runs, so every <c>await</c> in grain
/// code resumes on the activation's turn queue (never in parallel with another turn) and knows which call chain it
/// belongs to.
/// </summary>
public abstract class TurnContext : SynchronizationContext
{
    private static long s_nextChainId;
    private long _chainId;

    /// <summary>A process-unique number naming this turn in call chains that leave the process (assigned on first use).</summary>
    internal long ChainId
    {
        get
        {
            var id = Volatile.Read(ref _chainId);
            if (id != 0)
            {
                return id;
            }

            Interlocked.CompareExchange(ref _chainId, Interlocked.Increment(ref s_nextChainId), 0);
            return _chainId;
        }
    }

    /// <summary>Whether <see cref="ChainId"/> was ever assigned (only then can a remote chain name this turn).</summary>
    internal bool HasChainId => Volatile.Read(ref _chainId) != 0;

    /// <summary>For a request received from another process: the callers further up its chain, innermost first.</summary>
    internal IReadOnlyList<CallChainEntry>? RemoteCallers { get; set; }

    /// <summary>The activation this context runs on; null until the runtime routes it there.</summary>
    internal ITurnScheduler? Scheduler { get; set; }

    /// <summary>The context that made this call (null for calls from outside any grain, and for one-way calls).</summary>
    internal TurnContext? Caller { get; set; }

    /// <summary>The grain whose turn this is, for call-chain errors.</summary>
    internal GrainId OwnerId => Scheduler?.GrainId ?? default;

    public override void Post(SendOrPostCallback d, object? state)
    {
        if (Scheduler is { } scheduler)
        {
            scheduler.Post(this, d, state);
        }
        else
        {
            // Not bound to an activation (should not happen for code running in a turn): keep the continuation alive.
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.d(s.state), (d, state), preferLocal: false);
        }
    }

    public override SynchronizationContext CreateCopy() => this;
}

/// <summary>One caller in a call chain that crossed processes: the grain and the number of its turn.</summary>
internal readonly record struct CallChainEntry(GrainId Grain, long ChainId);

/// <summary>What a <see cref="TurnContext"/> needs from the activation that runs it. Implemented by the runtime.</summary>
internal interface ITurnScheduler
{
    GrainId GrainId { get; }

    IGrainCallRuntime Runtime { get; }

    /// <summary>Queues a continuation of the turn <paramref name="context"/> on this activation.</summary>
    void Post(TurnContext context, SendOrPostCallback callback, object? state);

    /// <summary>The request finished (its response is about to be sent): admit the next waiting request.</summary>
    void OnRequestCompleted(RequestBase request, Exception? error);
}
