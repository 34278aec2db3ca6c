using System.Collections.Concurrent;
using Orleans.LIFL.Runtime.GrainDirectory;

namespace Orleans.LIFL.Runtime.Catalog;

/// <summary>The activations of one silo: at most one per grain (stateless workers excepted, in groups).</summary>
internal sealed class Catalog
{
    private readonly ConcurrentDictionary<GrainId, ActivationData> _activations = new();
    private readonly ConcurrentDictionary<GrainId, StatelessWorkerGroup> _workerGroups = new();
    private ActivationEnvironment? _environment;

    public ActivationEnvironment Environment
    {
        get => _environment ?? throw new InvalidOperationException("The catalog is not attached to a silo yet.");
        set => _environment = value;
    }

    public int Count => _activations.Count + _workerGroups.Values.Sum(g => g.Count);

    public bool TryGet(GrainId grainId, out ActivationData activation) => _activations.TryGetValue(grainId, out activation!);

    public bool Contains(GrainAddress address) =>
        _activations.TryGetValue(address.GrainId, out var activation) && activation.Address.Matches(address);

    /// <summary>The grain's activation on this silo, created (and its activation turn queued) if absent.</summary>
    public ActivationData GetOrCreate(GrainId grainId, GrainClassInfo classInfo)
    {
        if (_activations.TryGetValue(grainId, out var existing))
        {
            return existing;
        }

        var created = new ActivationData(grainId, classInfo, Environment);
        var winner = _activations.GetOrAdd(grainId, created);
        if (ReferenceEquals(winner, created))
        {
            created.StartActivation();
        }

        return winner;
    }

    public StatelessWorkerGroup GetOrCreateWorkerGroup(GrainId grainId, GrainClassInfo classInfo) =>
        _workerGroups.TryGetValue(grainId, out var group)
            ? group
            : _workerGroups.GetOrAdd(grainId, id => new StatelessWorkerGroup(id, classInfo, this));

    public void Remove(ActivationData activation) =>
        _activations.TryRemove(new KeyValuePair<GrainId, ActivationData>(activation.GrainId, activation));

    public void RemoveWorkerGroup(StatelessWorkerGroup group) =>
        _workerGroups.TryRemove(new KeyValuePair<GrainId, StatelessWorkerGroup>(group.GrainId, group));

    /// <summary>Every activation, stateless workers included, enumerated without copying (for periodic sweeps;
    /// activations added or removed meanwhile may or may not be seen).</summary>
    public IEnumerable<ActivationData> Enumerate()
    {
        foreach (var entry in _activations)
        {
            yield return entry.Value;
        }

        foreach (var group in _workerGroups)
        {
            foreach (var worker in group.Value.Workers)
            {
                yield return worker;
            }
        }
    }

    /// <summary>Every activation, stateless workers included (a snapshot).</summary>
    public IReadOnlyList<ActivationData> Snapshot() =>
        [.. _activations.Values, .. _workerGroups.Values.SelectMany(g => g.Workers)];
}

/// <summary>The local activations of one stateless worker grain; calls go to an idle one, or a new one up to the limit.</summary>
internal sealed class StatelessWorkerGroup
{
    private readonly GrainClassInfo _classInfo;
    private readonly Catalog _catalog;
    private readonly Lock _lock = new();
    private readonly List<ActivationData> _workers = [];
    private bool _removed;

    public StatelessWorkerGroup(GrainId grainId, GrainClassInfo classInfo, Catalog catalog)
    {
        GrainId = grainId;
        _classInfo = classInfo;
        _catalog = catalog;
    }

    public GrainId GrainId { get; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _workers.Count;
            }
        }
    }

    public IReadOnlyList<ActivationData> Workers
    {
        get
        {
            lock (_lock)
            {
                return [.. _workers];
            }
        }
    }

    public EnqueueResult Enqueue(Invocation.RequestBase request)
    {
        for (var attempt = 0; attempt < 8; attempt++)
        {
            ActivationData target;
            lock (_lock)
            {
                if (_removed)
                {
                    return EnqueueResult.Rejected;
                }

                target = Choose();
            }

            if (target.Enqueue(request) == EnqueueResult.Accepted)
            {
                return EnqueueResult.Accepted;
            }
        }

        return EnqueueResult.Rejected;
    }

    private ActivationData Choose()
    {
        ActivationData? leastLoaded = null;
        var leastLoad = int.MaxValue;
        foreach (var worker in _workers)
        {
            var load = worker.Load;
            if (load == 0 && worker.IsIdle)
            {
                return worker;
            }

            if (load < leastLoad)
            {
                leastLoad = load;
                leastLoaded = worker;
            }
        }

        if (_workers.Count < _classInfo.MaxLocalWorkers || leastLoaded is null)
        {
            var worker = new ActivationData(GrainId, _classInfo, _catalog.Environment) { WorkerGroup = this };
            _workers.Add(worker);
            worker.StartActivation();
            return worker;
        }

        return leastLoaded;
    }

    public void Remove(ActivationData worker)
    {
        lock (_lock)
        {
            _workers.Remove(worker);
            if (_workers.Count > 0)
            {
                return;
            }

            _removed = true;
        }

        _catalog.RemoveWorkerGroup(this);
    }
}
