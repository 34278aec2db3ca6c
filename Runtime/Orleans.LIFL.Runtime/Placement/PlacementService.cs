using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.MembershipService;

namespace Orleans.LIFL.Runtime.Placement;

/// <summary>Registration of a placement director for one strategy type.</summary>
internal sealed record PlacementDirectorRegistration(Type StrategyType, Func<IServiceProvider, IPlacementDirector> Factory);

/// <summary>Where a silo's statistics come from (in-process: read directly; across processes: as published).</summary>
internal interface ISiloStatisticsSource
{
    SiloRuntimeStatistics? GetStatistics(SiloAddress silo);
}

/// <summary>Chooses the silo for each new activation, through the director registered for the grain class's strategy.</summary>
internal sealed class PlacementService : IPlacementContext
{
    private static readonly TimeSpan UnreachableFor = TimeSpan.FromSeconds(5);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Type, IPlacementDirector> _directors = new();
    private readonly IServiceProvider _services;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<SiloAddress, DateTime> _unreachable = new();
    private readonly MembershipTableManager _membership;
    private readonly ISiloStatisticsSource _statistics;

    public PlacementService(
        SiloAddress localSilo,
        IEnumerable<PlacementDirectorRegistration> registrations,
        IServiceProvider services,
        MembershipTableManager membership,
        ISiloStatisticsSource statistics)
    {
        LocalSilo = localSilo;
        _services = services;
        _membership = membership;
        _statistics = statistics;
        foreach (var registration in registrations)
        {
            _directors[registration.StrategyType] = registration.Factory(services);
        }
    }

    public SiloAddress LocalSilo { get; }

    public IReadOnlyList<SiloAddress> GetCompatibleSilos(PlacementTarget target)
    {
        var active = _membership.CurrentView.ActiveSilos;
        if (active.Count == 0)
        {
            return [LocalSilo];
        }

        if (_unreachable.IsEmpty)
        {
            return active;
        }

        // Silos this one just failed to reach are left out (until they answer again or are declared dead).
        var now = DateTime.UtcNow;
        var reachable = active.Where(s => IsReachable(s, now)).ToList();
        return reachable.Count > 0 ? reachable : active;
    }

    /// <summary>Whether <paramref name="silo"/> is one <see cref="GetCompatibleSilos"/> would offer now (active, not just unreachable).</summary>
    public bool IsAvailable(SiloAddress silo) => _membership.CurrentView.IsActive(silo) && IsReachable(silo, DateTime.UtcNow);

    /// <summary>False for a silo this one failed to reach less than <see cref="UnreachableFor"/> ago.</summary>
    private bool IsReachable(SiloAddress silo, DateTime now) => !_unreachable.TryGetValue(silo, out var since) || now - since > UnreachableFor;

    /// <summary>A send to this silo failed: keep new activations away from it for a few seconds.</summary>
    public void MarkUnreachable(SiloAddress silo) => _unreachable[silo] = DateTime.UtcNow;

    public SiloRuntimeStatistics? GetSiloStatistics(SiloAddress silo) => _statistics.GetStatistics(silo);

    public async Task<SiloAddress> PlaceAsync(GrainClassInfo classInfo, GrainId grainId, Type? interfaceType)
    {
        var strategy = classInfo.Placement;
        if (!_directors.TryGetValue(strategy.GetType(), out var director))
        {
            // A strategy that names its director brings it along: created once, from the silo's services.
            var named = strategy.GetType().GetCustomAttributes(typeof(PlacementDirectorAttribute), inherit: false).OfType<PlacementDirectorAttribute>().FirstOrDefault()
                ?? throw new InvalidOperationException(
                    $"Grain class {classInfo.ClassType.Name} uses placement strategy {strategy.GetType().Name}, but no director is registered for it; add one with AddPlacementDirector.");
            director = _directors.GetOrAdd(strategy.GetType(), _ => (IPlacementDirector)ActivatorUtilities.CreateInstance(_services, named.DirectorType));
        }

        var target = new PlacementTarget(grainId, classInfo.ClassType, interfaceType);
        var silo = await director.OnAddActivation(strategy, target, this).ConfigureAwait(false);
        if (silo is null || !GetCompatibleSilos(target).Contains(silo))
        {
            throw new InvalidOperationException(
                $"Placement director {director.GetType().Name} chose {silo?.ToString() ?? "no silo"} for {grainId}, which is not an active compatible silo.");
        }

        return silo;
    }

    internal static void AddDefaultDirectors(IServiceCollection services)
    {
        services.AddSingleton(new PlacementDirectorRegistration(typeof(RandomPlacement), static _ => new RandomPlacementDirector()));
        services.AddSingleton(new PlacementDirectorRegistration(typeof(PreferLocalPlacement), static _ => new PreferLocalPlacementDirector()));
        services.AddSingleton(new PlacementDirectorRegistration(typeof(HashBasedPlacement), static _ => new HashBasedPlacementDirector()));
        services.AddSingleton(new PlacementDirectorRegistration(typeof(ActivationCountBasedPlacement), static _ => new ActivationCountPlacementDirector()));
        services.AddSingleton(new PlacementDirectorRegistration(typeof(StatelessWorkerPlacement), static _ => new PreferLocalPlacementDirector()));
        services.AddOptions<ResourceOptimizedPlacementOptions>().BindConfiguration("Lifl:ResourceOptimizedPlacement");
        services.AddSingleton(new PlacementDirectorRegistration(
            typeof(ResourceOptimizedPlacement),
            static sp => new ResourceOptimizedPlacementDirector(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<ResourceOptimizedPlacementOptions>>().Value)));
    }
}

internal sealed class RandomPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        return Task.FromResult(silos[Random.Shared.Next(silos.Count)]);
    }
}

internal sealed class HashBasedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s).ToArray();
        return Task.FromResult(silos[(int)(target.GrainIdentity.GetStableHashCode() % (uint)silos.Length)]);
    }
}

/// <summary>Power of two choices on the activation counts the silos last published.</summary>
internal sealed class ActivationCountPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Count == 1)
        {
            return Task.FromResult(silos[0]);
        }

        var first = Random.Shared.Next(silos.Count);
        var second = Random.Shared.Next(silos.Count - 1);
        if (second >= first)
        {
            second++;
        }

        var a = silos[first];
        var b = silos[second];
        var countA = context.GetSiloStatistics(a)?.ActivationCount ?? int.MaxValue;
        var countB = context.GetSiloStatistics(b)?.ActivationCount ?? int.MaxValue;
        return Task.FromResult(countB < countA ? b : a);
    }
}
