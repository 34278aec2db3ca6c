using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Timers;

namespace Orleans.LIFL.Runtime.Catalog;

/// <summary>The outcome of handing a request to an activation.</summary>
internal enum EnqueueResult
{
    Accepted,

    /// <summary>The activation is gone; route the request again.</summary>
    Rejected,
}

internal sealed partial class ActivationData : IThreadPoolWorkItem
{
    /// <summary>Turns run back to back before the activation yields its thread to other work.</summary>
    private const int TurnsPerQuantum = 64;

    private readonly Lock _lock = new();
    private readonly Queue<WorkItem> _ready = new();
    private readonly Queue<RequestBase> _waiting = new();
    private readonly List<RequestBase> _running = [];
    private ActivationState _state = ActivationState.Activating;
    private int _exclusiveRunning;
    private int _readOnlyRunning;
    private bool _scheduled;
    private long _lastActivity;
    private long _keepAliveUntil;

    /// <summary>A unit of work on the turn queue: start a request, or continue a turn.</summary>
    private readonly struct WorkItem
    {
        public WorkItem(TurnContext context, SendOrPostCallback? callback, object? state)
        {
            Context = context;
            Callback = callback;
            State = state;
        }

        public TurnContext Context { get; }

        /// <summary>Null: start the request that is <see cref="Context"/>.</summary>
        public SendOrPostCallback? Callback { get; }

        public object? State { get; }
    }

    /// <summary>Number of requests admitted and not finished.</summary>
    public int RunningCount
    {
        get
        {
            lock (_lock)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>Number of requests waiting for admission.</summary>
    public int WaitingCount
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Hands a request to this activation; it runs when the grain's concurrency rules allow.</summary>
    public EnqueueResult Enqueue(RequestBase request)
    {
        Exception? deadlock = null;
        lock (_lock)
        {
            if (_state == ActivationState.Invalid)
            {
                return EnqueueResult.Rejected;
            }

            request.Scheduler = this;
            if (CanStartNow(request))
            {
                Admit(request);
                ScheduleLocked();
                return EnqueueResult.Accepted;
            }

            deadlock = DetectDeadlockLocked(request);
            if (deadlock is null)
            {
                _waiting.Enqueue(request);
                return EnqueueResult.Accepted;
            }
        }

        _environment.Statistics.DeadlockDetected();
        LogDeadlock(_environment.Logger, request.Method.FullName, GrainId, deadlock.Message);
        request.Fail(deadlock);
        return EnqueueResult.Accepted;
    }

    void ITurnScheduler.Post(TurnContext context, SendOrPostCallback callback, object? state)
    {
        lock (_lock)
        {
            _ready.Enqueue(new WorkItem(context, callback, state));
            ScheduleLocked();
        }
    }

    void ITurnScheduler.OnRequestCompleted(RequestBase request, Exception? error)
    {
        var timerTick = request as IGrainTimerTick;
        lock (_lock)
        {
            if (_running.Remove(request))
            {
                Release(request);
            }

            if (timerTick is null || timerTick.KeepAlive)
            {
                _lastActivity = _environment.Time.GetTimestamp();
            }

            AdmitWaitingLocked();
            if (_running.Count == 0 && _state == ActivationState.Deactivating && !_deactivationQueued)
            {
                QueueDeactivationLocked();
            }
        }

        _environment.Statistics.RequestCompleted(error is not null);
        if (timerTick is null && request.StartedTimestamp != 0)
        {
            _environment.Statistics.Calls.Record(GrainId.Type, request.Method, _environment.Time.GetElapsedTime(request.StartedTimestamp), error is not null);
        }

        if (timerTick is not null)
        {
            timerTick.OnTickCompleted(error);
        }
        else if (error is not null && request.Method.IsOneWay)
        {
            LogOneWayFailed(_environment.Logger, error, request.Method.FullName, GrainId);
        }
    }

    private bool CanStartNow(RequestBase request)
    {
        if (_state != ActivationState.Valid)
        {
            return false;
        }

        if (ClassInfo?.IsReentrant == true || request.Method.IsAlwaysInterleave)
        {
            return true;
        }

        // Requests that wait keep their order: a newcomer that could interleave does not jump the queue.
        return _waiting.Count == 0 && CanInterleaveWithRunning(request);
    }

    private bool CanInterleaveWithRunning(RequestBase request)
    {
        if (_exclusiveRunning > 0)
        {
            return false;
        }

        return request.Method.IsReadOnly || _readOnlyRunning == 0;
    }

    private void Admit(RequestBase request)
    {
        _running.Add(request);
        var method = request.Method;
        if (ClassInfo?.IsReentrant != true && !method.IsAlwaysInterleave)
        {
            if (method.IsReadOnly)
            {
                _readOnlyRunning++;
            }
            else
            {
                _exclusiveRunning++;
            }
        }

        _ready.Enqueue(new WorkItem(request, null, null));
    }

    private void Release(RequestBase request)
    {
        var method = request.Method;
        if (ClassInfo?.IsReentrant != true && !method.IsAlwaysInterleave)
        {
            if (method.IsReadOnly)
            {
                _readOnlyRunning--;
            }
            else
            {
                _exclusiveRunning--;
            }
        }
    }

    private void AdmitWaitingLocked()
    {
        if (_state != ActivationState.Valid)
        {
            return;
        }

        var admitted = false;
        while (_waiting.TryPeek(out var next))
        {
            if (next.IsCompleted)
            {
                // Timed out while it waited: the caller has its answer; never run it.
                _waiting.Dequeue();
                continue;
            }

            if (ClassInfo?.IsReentrant != true && !next.Method.IsAlwaysInterleave && !CanInterleaveWithRunning(next))
            {
                break;
            }

            _waiting.Dequeue();
            Admit(next);
            admitted = true;
        }

        if (admitted)
        {
            ScheduleLocked();
        }
    }

    private void ScheduleLocked()
    {
        if (!_scheduled && _ready.Count > 0)
        {
            _scheduled = true;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
        }
    }

    /// <summary>Runs queued turns on a thread-pool thread; only one thread runs an activation at a time.</summary>
    public void Execute()
    {
        for (var turns = 0; ; turns++)
        {
            WorkItem item;
            lock (_lock)
            {
                if (!_ready.TryDequeue(out item))
                {
                    _scheduled = false;
                    return;
                }
            }

            RunTurn(item);

            if (turns == TurnsPerQuantum - 1)
            {
                lock (_lock)
                {
                    if (_ready.Count == 0)
                    {
                        _scheduled = false;
                        return;
                    }
                }

                // Let other activations run; this one stays scheduled.
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                return;
            }
        }
    }

    private void RunTurn(in WorkItem item)
    {
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(item.Context);
        try
        {
            if (item.Callback is { } callback)
            {
                callback(item.State);
            }
            else
            {
                StartRequest((RequestBase)item.Context);
            }
        }
        catch (Exception error)
        {
            // Continuations of grain code never throw here (async methods capture their exceptions); if one does,
            // keep the activation serving and make it visible.
            LogTurnFailed(_environment.Logger, error, GrainId);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private void StartRequest(RequestBase request)
    {
        if (request.IsCompleted)
        {
            // Timed out between admission and its turn.
            ((ITurnScheduler)this).OnRequestCompleted(request, null);
            return;
        }

        request.StartedTimestamp = _environment.Time.GetTimestamp();
        object target;
        try
        {
            target = request.ResolveTarget(this);
        }
        catch (Exception error)
        {
            ((ITurnScheduler)this).OnRequestCompleted(request, error);
            request.Fail(error);
            return;
        }

        request.Invoke(target);
    }

    /// <summary>Fails the requests whose caller has given up; returns how many.</summary>
    public int FailExpiredRequests(long now)
    {
        // Cheap unlocked look first: most activations have nothing in flight (a request added meanwhile is seen
        // by the next sweep, long before it can expire).
        if (_running.Count == 0 && _waiting.Count == 0)
        {
            return 0;
        }

        List<RequestBase>? expired = null;
        lock (_lock)
        {
            foreach (var request in _running)
            {
                if (request.IsExpired(now) && !request.IsCompleted)
                {
                    (expired ??= []).Add(request);
                }
            }

            foreach (var request in _waiting)
            {
                if (request.IsExpired(now) && !request.IsCompleted)
                {
                    (expired ??= []).Add(request);
                }
            }
        }

        if (expired is null)
        {
            return 0;
        }

        foreach (var request in expired)
        {
            bool running;
            int queuedAhead;
            lock (_lock)
            {
                running = _running.Contains(request);
                queuedAhead = running ? 0 : _waiting.TakeWhile(r => !ReferenceEquals(r, request)).Count();
            }

            var where = running
                ? "it was still running"
                : $"it was still waiting for the grain, behind {queuedAhead} other request(s) and {_running.Count} running";
            var timeout = CallTimeouts.ToTimeSpan(_environment.Time, request.DeadlineTimestamp - request.SentTimestamp);
            request.Fail(new GrainCallTimeoutException(
                $"Response did not arrive on time in {timeout} for {request.Method.FullName} to {GrainId}: {where}."));
            _environment.Statistics.RequestTimedOut();
        }

        return expired.Count;
    }

    /// <summary>
    /// A request that cannot start now would wait forever if a turn holding this activation is waiting, up its call
    /// chain, for this very request.
    /// </summary>
    private DeadlockException? DetectDeadlockLocked(RequestBase request)
    {
        if (ClassInfo?.IsReentrant == true)
        {
            return null;
        }

        TurnContext root = request;
        for (var caller = request.Caller; caller is not null; caller = caller.Caller)
        {
            root = caller;
            if (ReferenceEquals(caller.Scheduler, this) && IsHoldingLocked(caller))
            {
                var chain = new List<string>();
                for (var c = request.Caller; c is not null; c = c.Caller)
                {
                    chain.Add(c is RequestBase r ? $"{c.OwnerId} ({r.Method.FullName})" : $"{c.OwnerId} ({c.GetType().Name})");
                }

                chain.Reverse();
                chain.Add($"{GrainId} ({request.Method.FullName})");
                return new DeadlockException(
                    $"Deadlock: {request.Method.FullName} to {GrainId} cannot run because {GrainId} is busy waiting for this same call chain: "
                    + string.Join(" -> ", chain)
                    + ". Mark the grain [Reentrant] or the method [AlwaysInterleave], or avoid the call back.",
                    chain);
            }
        }

        // Callers in other processes: the chain names them by grain and turn number.
        if (root.RemoteCallers is { } remote)
        {
            foreach (var entry in remote)
            {
                if (entry.Grain == GrainId && IsHoldingChainLocked(entry.ChainId))
                {
                    var chain = remote.Reverse().Select(e => e.Grain.ToString()).Append($"{GrainId} ({request.Method.FullName})").ToList();
                    return new DeadlockException(
                        $"Deadlock: {request.Method.FullName} to {GrainId} cannot run because {GrainId} is busy waiting for this same call chain (across silos): "
                        + string.Join(" -> ", chain)
                        + ". Mark the grain [Reentrant] or the method [AlwaysInterleave], or avoid the call back.",
                        chain);
                }
            }
        }

        return null;
    }

    private bool IsHoldingChainLocked(long chainId)
    {
        if (_lifecycle.HasChainId && _lifecycle.ChainId == chainId && _state is ActivationState.Activating or ActivationState.Deactivating)
        {
            return true;
        }

        foreach (var running in _running)
        {
            if (running.HasChainId && running.ChainId == chainId)
            {
                return true;
            }
        }

        return false;
    }

    private bool IsHoldingLocked(TurnContext context) =>
        ReferenceEquals(context, _lifecycle)
            ? _state is ActivationState.Activating or ActivationState.Deactivating
            : context is RequestBase request && _running.Contains(request);
}
