using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Timers;

namespace Orleans.LIFL.Runtime.Catalog;

internal sealed partial class ActivationData
{
    private readonly TaskCompletionSource _deactivated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DeactivationReason _deactivationReason;
    private bool _deactivationQueued;

    /// <summary>Completes when the activation is gone (deactivated, failed, duplicate or killed).</summary>
    public Task Deactivated => _deactivated.Task;

    /// <summary>
    /// Whether the activation registers in the grain directory (stateless workers, observers and grains whose placement
    /// does without the directory do not).
    /// </summary>
    private bool UsesDirectory =>
        !IsPinned && WorkerGroup is null && ClassInfo?.Placement.UsesGrainDirectory(GrainId) != false && _environment.Directory is not null;

    /// <summary>Queues the activation turn: directory registration, construction, state, OnActivateAsync.</summary>
    public void StartActivation()
    {
        lock (_lock)
        {
            _ready.Enqueue(new WorkItem(_lifecycle, static s => ((ActivationData)s!).RunActivation(), this));
            ScheduleLocked();
        }
    }

    private void RunActivation() => _ = ActivateAsync();

    private async Task ActivateAsync()
    {
        try
        {
            if (UsesDirectory)
            {
                var winner = await _environment.Directory!.Register(Address, _environment.IsSiloDead);
                if (!winner.Matches(Address) && winner.Silo.Equals(Silo) && _environment.Catalog?.Contains(winner) != true)
                {
                    // A leftover entry of an activation this silo no longer has: replace it.
                    await _environment.Directory.Unregister(winner);
                    winner = await _environment.Directory.Register(Address, _environment.IsSiloDead);
                }

                if (!winner.Matches(Address))
                {
                    OnDuplicate(winner);
                    return;
                }
            }

            using (Grain.BeginConstruction(this))
            {
                _instance = ClassInfo!.Factory(_environment.Services, this);
            }

            foreach (var state in _states)
            {
                await state.ReadStateAsync();
            }

            if (_instance is Grain grain)
            {
                await grain.OnActivateAsync(_environment.Stopping);
            }
        }
        catch (Exception error)
        {
            OnActivationFailed(error);
            return;
        }

        lock (_lock)
        {
            if (_state == ActivationState.Activating)
            {
                _state = ActivationState.Valid;
                _lastActivity = _environment.Time.GetTimestamp();
                AdmitWaitingLocked();
            }
        }

        _environment.Statistics.ActivationCreated();
    }

    private void OnActivationFailed(Exception error)
    {
        LogActivationFailed(_environment.Logger, error, GrainId);
        _environment.Statistics.ActivationFailed();
        var waiting = Invalidate();
        DisposeTimers();
        if (UsesDirectory)
        {
            _ = _environment.Directory!.Unregister(Address).AsTask();
        }

        foreach (var request in waiting)
        {
            request.Fail(error);
        }

        _deactivated.TrySetResult();
    }

    private void OnDuplicate(GrainAddress winner)
    {
        // Another silo (or an earlier activation) won the registration: this one never existed for callers.
        var waiting = Invalidate();
        foreach (var request in waiting)
        {
            _environment.Router!.Forward(request, winner.Silo);
        }

        _deactivated.TrySetResult();
    }

    /// <summary>Deactivates once the running requests have finished; new requests wait and are re-routed after.</summary>
    public void StartDeactivation(DeactivationReason reason)
    {
        lock (_lock)
        {
            if (_state != ActivationState.Valid || IsPinned)
            {
                return;
            }

            _state = ActivationState.Deactivating;
            _deactivationReason = reason;
            if (_running.Count == 0)
            {
                QueueDeactivationLocked();
            }
        }
    }

    private void QueueDeactivationLocked()
    {
        _deactivationQueued = true;
        _ready.Enqueue(new WorkItem(_lifecycle, static s => _ = ((ActivationData)s!).DeactivateAsync(), this));
        ScheduleLocked();
    }

    private async Task DeactivateAsync()
    {
        DisposeTimers();
        var reason = _deactivationReason;
        if (_instance is Grain grain)
        {
            try
            {
                await grain.OnDeactivateAsync(reason, _environment.Stopping).WaitAsync(_environment.Collection.DeactivationTimeout, _environment.Time);
            }
            catch (Exception error)
            {
                LogDeactivationFailed(_environment.Logger, error, GrainId);
            }
        }

        if (UsesDirectory)
        {
            try
            {
                await _environment.Directory!.Unregister(Address);
            }
            catch (Exception error)
            {
                LogDeactivationFailed(_environment.Logger, error, GrainId);
            }
        }

        var waiting = Invalidate();
        _environment.Statistics.ActivationDeactivated(reason.ReasonCode == DeactivationReasonCode.ActivationIdle);
        LogDeactivated(_environment.Logger, GrainId, reason.ReasonCode);
        foreach (var request in waiting)
        {
            _environment.Router?.Reroute(request);
        }

        _deactivated.TrySetResult();
    }

    /// <summary>Marks the activation gone, removes it from its catalog and returns the requests still waiting.</summary>
    private List<RequestBase> Invalidate()
    {
        List<RequestBase> waiting;
        lock (_lock)
        {
            _state = ActivationState.Invalid;
            waiting = [.. _waiting.Where(r => !r.IsCompleted)];
            _waiting.Clear();
        }

        if (WorkerGroup is { } group)
        {
            group.Remove(this);
        }
        else
        {
            _environment.Catalog?.Remove(this);
        }

        return waiting;
    }

    /// <summary>The silo died: drop everything without running grain code; callers get <paramref name="error"/>.</summary>
    public void Kill(Exception error)
    {
        List<RequestBase> pending;
        lock (_lock)
        {
            _state = ActivationState.Invalid;
            pending = [.. _running, .. _waiting];
            _waiting.Clear();
            _ready.Clear();
        }

        DisposeTimers();
        foreach (var request in pending)
        {
            request.Fail(error);
        }

        _deactivated.TrySetResult();
    }

    /// <summary>Starts deactivation if the activation has been idle longer than its collection age.</summary>
    public bool TryCollectIdle(long now)
    {
        var age = ClassInfo?.CollectionAge ?? Timeout.InfiniteTimeSpan;
        if (IsPinned || age == Timeout.InfiniteTimeSpan)
        {
            return false;
        }

        var ageTicks = CallTimeouts.ToTicks(_environment.Time, age);
        lock (_lock)
        {
            if (_state != ActivationState.Valid || _running.Count > 0 || _waiting.Count > 0 || _ready.Count > 0
                || now - _lastActivity < ageTicks || now < _keepAliveUntil)
            {
                return false;
            }
        }

        StartDeactivation(new DeactivationReason(DeactivationReasonCode.ActivationIdle, $"idle for more than {Core.Durations.Format(age)}"));
        return true;
    }

    /// <summary>True when nothing runs or waits (stateless worker groups pick idle workers first).</summary>
    public bool IsIdle
    {
        get
        {
            lock (_lock)
            {
                return _state == ActivationState.Valid && _running.Count == 0 && _waiting.Count == 0;
            }
        }
    }

    /// <summary>Requests running plus waiting: the load of a stateless worker.</summary>
    public int Load
    {
        get
        {
            lock (_lock)
            {
                return _running.Count + _waiting.Count;
            }
        }
    }

    private void DisposeTimers()
    {
        GrainTimerBase[] timers;
        lock (_lock)
        {
            timers = [.. _timers];
            _timers.Clear();
        }

        foreach (var timer in timers)
        {
            timer.DisposeFromActivation();
        }
    }
}
