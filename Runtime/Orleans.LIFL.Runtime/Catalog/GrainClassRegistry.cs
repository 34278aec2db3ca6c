using System.Collections.Concurrent;
using System.Reflection;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Metadata;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Catalog;

/// <summary>Everything the runtime needs to know about one grain class, read once at start-up.</summary>
internal sealed class GrainClassInfo
{
    public required GrainType GrainType { get; init; }

    public required Type ClassType { get; init; }

    public required IReadOnlyList<Type> Interfaces { get; init; }

    public required Func<IServiceProvider, IGrainContext, object> Factory { get; init; }

    public required bool IsReentrant { get; init; }

    /// <summary>0 unless the class is a [StatelessWorker].</summary>
    public required int MaxLocalWorkers { get; init; }

    public required PlacementStrategy Placement { get; init; }

    /// <summary>Idle time before collection; <see cref="Timeout.InfiniteTimeSpan"/> for [KeepAlive] classes.</summary>
    public required TimeSpan CollectionAge { get; init; }

    public required IReadOnlyList<string> ImplicitStreamNamespaces { get; init; }

    public bool IsStatelessWorker => MaxLocalWorkers > 0;

    public override string ToString() => $"{ClassType.FullName} ({GrainType})";
}

/// <summary>Maps grain interfaces to grain types (what <see cref="IGrainFactory.GetGrain{T}(string, string?)"/> needs).</summary>
internal interface IGrainTypeResolver
{
    GrainType ResolveGrainType(Type interfaceType, string? grainClassNamePrefix);
}

/// <summary>The grain classes of a silo, found in its application parts (assemblies with generated code).</summary>
internal sealed class GrainClassRegistry : IGrainTypeResolver, IImplicitSubscriberSource
{
    private readonly Dictionary<GrainType, GrainClassInfo> _byType = [];
    private readonly Dictionary<Type, List<GrainClassInfo>> _byInterface = [];
    private readonly Dictionary<string, List<GrainClassInfo>> _byStreamNamespace = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(Type, string?), GrainType> _resolved = new();

    public GrainClassRegistry(IEnumerable<Assembly> applicationParts, GrainCollectionOptions collection)
    {
        foreach (var descriptor in GeneratedCodeRegistry.GetGrainClasses(applicationParts))
        {
            var info = Describe(descriptor, collection);
            if (_byType.TryGetValue(info.GrainType, out var clash))
            {
                throw new InvalidOperationException(
                    $"Grain classes {clash.ClassType.FullName} and {info.ClassType.FullName} both have grain type '{info.GrainType}'; give one a [GrainType(\"...\")].");
            }

            _byType.Add(info.GrainType, info);
            foreach (var iface in info.Interfaces)
            {
                if (!_byInterface.TryGetValue(iface, out var list))
                {
                    _byInterface[iface] = list = [];
                }

                list.Add(info);
            }

            foreach (var ns in info.ImplicitStreamNamespaces)
            {
                if (!_byStreamNamespace.TryGetValue(ns, out var list))
                {
                    _byStreamNamespace[ns] = list = [];
                }

                list.Add(info);
            }
        }
    }

    public IEnumerable<GrainClassInfo> Classes => _byType.Values;

    public bool TryGet(GrainType grainType, out GrainClassInfo info) => _byType.TryGetValue(grainType, out info!);

    public GrainClassInfo Get(GrainType grainType) =>
        _byType.TryGetValue(grainType, out var info)
            ? info
            : throw new GrainTypeResolutionException($"No grain class with grain type '{grainType}' is registered on this silo.");

    /// <summary>The grain classes implicitly subscribed to a stream namespace.</summary>
    public IReadOnlyList<GrainType> GetImplicitSubscribers(string streamNamespace) =>
        _byStreamNamespace.TryGetValue(streamNamespace, out var list) ? list.Select(c => c.GrainType).ToList() : [];

    public GrainType ResolveGrainType(Type interfaceType, string? grainClassNamePrefix) =>
        _resolved.TryGetValue((interfaceType, grainClassNamePrefix), out var type)
            ? type
            : _resolved.GetOrAdd((interfaceType, grainClassNamePrefix), Resolve(interfaceType, grainClassNamePrefix));

    private GrainType Resolve(Type interfaceType, string? prefix) =>
        ManifestResolver.Choose(
            interfaceType,
            prefix,
            _byInterface.GetValueOrDefault(interfaceType) ?? [],
            c => c.ClassType.FullName!,
            c => c.ClassType.Name).GrainType;

    private static GrainClassInfo Describe(GrainClassDescriptor descriptor, GrainCollectionOptions collection)
    {
        var type = descriptor.GrainClass;
        var grainType = type.GetCustomAttribute<GrainTypeAttribute>()?.GrainType ?? DefaultGrainTypeName(type);
        var statelessWorker = type.GetCustomAttribute<StatelessWorkerAttribute>();
        var placement = statelessWorker is not null
            ? new StatelessWorkerPlacement(statelessWorker.MaxLocalWorkers)
            : type.GetCustomAttribute<PlacementAttribute>()?.PlacementStrategy ?? RandomPlacement.Singleton;

        TimeSpan age;
        if (type.IsDefined(typeof(KeepAliveAttribute), inherit: true))
        {
            age = Timeout.InfiniteTimeSpan;
        }
        else if (collection.ClassSpecificCollectionAge.TryGetValue(type.FullName!, out var configured))
        {
            age = configured;
        }
        else if (type.GetCustomAttribute<CollectionAgeLimitAttribute>() is { } limit)
        {
            age = limit.Amount;
            if (age <= TimeSpan.Zero)
            {
                throw new InvalidOperationException($"[CollectionAgeLimit] on {type.FullName} must be positive.");
            }
        }
        else
        {
            age = collection.CollectionAge;
        }

        return new GrainClassInfo
        {
            GrainType = new GrainType(grainType),
            ClassType = type,
            Interfaces = descriptor.Interfaces,
            Factory = descriptor.Factory,
            IsReentrant = type.IsDefined(typeof(ReentrantAttribute), inherit: true),
            MaxLocalWorkers = statelessWorker?.MaxLocalWorkers ?? 0,
            Placement = placement,
            CollectionAge = age,
            ImplicitStreamNamespaces = type.GetCustomAttributes<ImplicitStreamSubscriptionAttribute>(inherit: false).Select(a => a.Namespace).ToArray(),
        };
    }

    /// <summary>As Orleans: the class name in lower case, without a trailing "Grain".</summary>
    internal static string DefaultGrainTypeName(Type type)
    {
        var name = type.Name;
        if (name.EndsWith("Grain", StringComparison.Ordinal) && name.Length > "Grain".Length)
        {
            name = name[..^"Grain".Length];
        }

        return name.ToLowerInvariant();
    }
}

/// <summary>Finds the assemblies whose grain classes a silo hosts.</summary>
internal static class ApplicationParts
{
    /// <summary>
    /// Every loaded or referenced assembly that carries generated grain code, plus the explicit ones. References are
    /// followed through any assembly of the application (an app may reach its grain library only through another
    /// library); framework assemblies are not entered.
    /// </summary>
    public static IReadOnlyList<Assembly> Discover(IEnumerable<Assembly> explicitParts)
    {
        var found = new HashSet<Assembly> { typeof(ApplicationParts).Assembly };
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<Assembly>(explicitParts.Concat(AppDomain.CurrentDomain.GetAssemblies()));
        if (Assembly.GetEntryAssembly() is { } entry)
        {
            pending.Push(entry);
        }

        while (pending.Count > 0)
        {
            var assembly = pending.Pop();
            if (assembly.IsDynamic || !visited.Add(assembly.FullName!))
            {
                continue;
            }

            if (IsFramework(assembly.GetName().Name))
            {
                continue;
            }

            if (GeneratedCodeRegistry.HasGeneratedCode(assembly))
            {
                found.Add(assembly);
            }

            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                if (!IsFramework(reference.Name) && !visited.Contains(reference.FullName))
                {
                    try
                    {
                        pending.Push(Assembly.Load(reference));
                    }
                    catch (Exception error) when (error is FileNotFoundException or FileLoadException or BadImageFormatException)
                    {
                        // A reference that is not deployed cannot hold grains this silo could host.
                    }
                }
            }
        }

        return found.ToList();
    }

    private static bool IsFramework(string? name) =>
        name is null || name.StartsWith("System", StringComparison.Ordinal) || name.StartsWith("Microsoft", StringComparison.Ordinal)
        || name is "mscorlib" or "netstandard" || name.StartsWith("xunit", StringComparison.Ordinal);
}
