using System.Collections.Immutable;
using Orleans.LIFL.Grains.Diagnostics;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Grains.FL;

/// <summary>The job's aggregation hierarchy: planned per round (and per epoch), assigned to warm aggregators, checked at the close.</summary>
public sealed partial class FlJobGrain
{
    private const int SlotsTried = 16;
    private static readonly TimeSpan DefaultArrivalWindow = TimeSpan.FromSeconds(10);

    private RoundHierarchy? _hierarchy;
    private readonly Dictionary<string, int> _arrivals = new(StringComparer.Ordinal);
    private long _lastArrival;
    private long _roundStartTimestamp;
    private ImmutableArray<SiloSample> _roundStartSamples = [];

    /// <summary>The hierarchy of the current round and epoch: planned and assigned on first need.</summary>
    private async Task<RoundHierarchy> HierarchyAsync()
    {
        var assignmentId = $"{JobId}/{State.Round}/{State.Epoch}";
        if (_hierarchy is { } current && current.Assignment == assignmentId)
        {
            return current;
        }

        var definition = Definition;
        var settings = definition.Aggregation;
        var silos = resources.ActiveSilos();
        var names = silos.Select(s => s.Silo.ToString()).ToList();
        var estimator = State.Arrivals ??= ArrivalEstimator.Initial(
            Math.Max(1, State.Selected.Count), names, Min(definition.RoundDeadline, DefaultArrivalWindow), settings.BytesPerSecondPerCore);
        var capacities = silos.Select(s => new SiloCapacity(
            s.Silo.ToString(),
            NodeOf(s.Silo, s.Statistics),
            Math.Max(1, s.Statistics?.ProcessorCount ?? Environment.ProcessorCount),
            Math.Clamp((s.Statistics?.CpuUsagePercent ?? 0) / 100, 0, 1),
            // Without locality the planner is not told where updates land: leaves go wherever there is room.
            settings.LocalityAware ? estimator.Expected(s.Silo.ToString()) : Math.Max(1, State.Selected.Count) / (double)silos.Count)).ToImmutableArray();
        var plan = AggregationPlanner.Plan(new PlannerInputs(
            capacities,
            definition.Model.Bytes,
            estimator.BytesPerSecondPerCore,
            estimator.Window > TimeSpan.Zero ? estimator.Window : DefaultArrivalWindow,
            settings.FanOut,
            settings.Hierarchical ? int.MaxValue : 1));

        var keys = await AssignAsync(plan, assignmentId, definition);
        _hierarchy = keys;
        LogPlanned(logger, JobId, State.Round, State.Epoch, plan.Count, plan.Depth, keys.WarmStarts, keys.ColdStarts);
        Signal(changed: false);
        return keys;
    }

    /// <summary>
    /// Gives every planned aggregator its key (the silo's slots in order, so a warm activation is found again) and its
    /// part of the round. One held by another job's round moves to the silo's next slot, and the plan is assigned
    /// again with the new keys (so that parents name their children right).
    /// </summary>
    private async Task<RoundHierarchy> AssignAsync(AggregationPlan plan, string assignmentId, FlJobDefinition definition)
    {
        var keys = new string[plan.Count];
        var slots = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var planned in plan.Aggregators)
        {
            keys[planned.Index] = NextKey(planned, slots);
        }

        for (var attempt = 0; ; attempt++)
        {
            var results = await Task.WhenAll(plan.Aggregators.Select(async planned =>
            {
                var assignment = new AggregatorAssignment
                {
                    JobId = JobId,
                    Round = State.Round,
                    Epoch = State.Epoch,
                    Role = planned.Role,
                    Children = [.. planned.Children.Select(c => keys[c])],
                    Lazy = !definition.Aggregation.Eager,
                    WarmWindow = definition.Aggregation.WarmWindow,
                };
                try
                {
                    return (planned, Result: (AggregatorAssigned?)await GrainFactory.GetGrain<IAggregatorGrain>(keys[planned.Index]).Assign(assignment));
                }
                catch (AggregatorBusyException) when (attempt < SlotsTried)
                {
                    return (planned, Result: null);
                }
            }));

            var busy = results.Where(r => r.Result is null).ToList();
            if (busy.Count == 0)
            {
                var hierarchy = new RoundHierarchy(assignmentId, plan, keys);
                foreach (var (planned, result) in results)
                {
                    hierarchy.Assigned(keys[planned.Index], result!);
                }

                return hierarchy;
            }

            foreach (var (planned, _) in busy)
            {
                keys[planned.Index] = NextKey(planned, slots);
            }
        }

        static string NextKey(PlannedAggregator planned, Dictionary<string, int> slots)
        {
            var slot = slots.GetValueOrDefault(planned.Silo);
            slots[planned.Silo] = slot + 1;
            return LocalityAwarePlacement.Key(planned.Node, planned.Silo, $"agg{slot}");
        }
    }

    /// <summary>Samples every silo's resources (resetting their peak memory at a round's start).</summary>
    private async Task<ImmutableArray<SiloSample>> SampleSilosAsync(bool resetPeak)
    {
        var silos = resources.ActiveSilos();
        var samples = await Task.WhenAll(silos.Select(async s =>
        {
            try
            {
                return await GrainFactory.GetGrain<ISiloMonitorGrain>(SiloMonitors.Key(NodeOf(s.Silo, s.Statistics), s.Silo.ToString())).Sample(resetPeak);
            }
            catch (Exception error) when (error is SiloUnavailableException or GrainCallTimeoutException or RuntimeUnavailableException)
            {
                return null;
            }
        }));
        return [.. samples.OfType<SiloSample>()];
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>A silo's node, or (before its first statistics arrived) a node of its own: nothing is packed with it.</summary>
    private static string NodeOf(SiloAddress silo, SiloRuntimeStatistics? statistics) =>
        statistics?.NodeId is { Length: > 0 } node ? node : "unknown-" + silo.ToString().Replace(':', '-').Replace('@', '-').Replace('.', '-');

    /// <summary>One round's (and epoch's) aggregators: their keys, activations and what they reported.</summary>
    private sealed class RoundHierarchy(string assignment, AggregationPlan plan, string[] keys)
    {
        private readonly Dictionary<string, Guid> _incarnations = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _silos = new(StringComparer.Ordinal);

        public string Assignment { get; } = assignment;

        public AggregationPlan Plan { get; } = plan;

        public string TopKey => keys[Plan.Top.Index];

        public int WarmStarts { get; private set; }

        public int ColdStarts { get; private set; }

        public int Accepted => _counts.Values.Sum();

        public void Assigned(string key, AggregatorAssigned result)
        {
            _incarnations[key] = result.Incarnation;
            _silos[key] = result.Silo;
            if (result.Warm)
            {
                WarmStarts++;
            }
            else
            {
                ColdStarts++;
            }
        }

        /// <summary>The leaf a session on <paramref name="silo"/> sends to: one of that silo's (else its node's), spread over clients.</summary>
        public string LeafFor(string silo, string node, string client, bool locality)
        {
            var leaves = locality ? Plan.LeavesOn(silo, node) : Plan.Leaves;
            var pick = leaves[(int)((uint)StableHash(client) % (uint)leaves.Length)];
            return keys[pick.Index];
        }

        /// <summary>Records a leaf's count; false when the report comes from another activation than the one assigned (the first died).</summary>
        public bool Report(string leaf, Guid incarnation, int count)
        {
            if (!_incarnations.TryGetValue(leaf, out var assigned) || assigned != incarnation)
            {
                return false;
            }

            _counts[leaf] = Math.Max(_counts.GetValueOrDefault(leaf), count);
            return true;
        }

        /// <summary>Whether a closed aggregate holds exactly what the assigned activations reported.</summary>
        public bool Matches(PartialAggregate aggregate) =>
            aggregate.Sources.All(s => _incarnations.TryGetValue(s.Aggregator, out var incarnation) && incarnation == s.Incarnation)
            && _counts.All(c => aggregate.Sources.Any(s => s.Aggregator == c.Key && s.Count >= c.Value))
            && aggregate.Count == aggregate.Sources.Sum(s => s.Count);

        public ImmutableArray<AggregatorInfo> Describe() =>
        [
            .. Plan.Aggregators.Select(a => new AggregatorInfo(keys[a.Index], a.Role, _silos.GetValueOrDefault(keys[a.Index], a.Silo), _counts.GetValueOrDefault(keys[a.Index]))),
        ];

        // string.GetHashCode is randomized per process; clients must spread the same way on any silo.
        private static int StableHash(string value)
        {
            var hash = 17;
            foreach (var c in value)
            {
                hash = unchecked((hash * 31) + c);
            }

            return hash;
        }
    }
}
