using System.Collections.Concurrent;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Catalog;

/// <summary>One grain class as a client needs to know it: its names and grain type.</summary>
[GenerateSerializer]
[Immutable]
internal sealed record GrainClassEntry(
    [property: Id(0)] string ClassFullName,
    [property: Id(1)] string ClassName,
    [property: Id(2)] string GrainType);

/// <summary>
/// What clients learn from their gateway: which grain classes implement which interfaces, which classes are
/// implicitly subscribed to which stream namespaces, and the stream providers configured on the silos.
/// </summary>
[GenerateSerializer]
internal sealed class ClusterManifest
{
    [Id(0)]
    public Dictionary<string, List<GrainClassEntry>> Interfaces { get; set; } = new(StringComparer.Ordinal);

    [Id(1)]
    public Dictionary<string, List<string>> ImplicitSubscriptions { get; set; } = new(StringComparer.Ordinal);

    [Id(2)]
    public List<string> StreamProviders { get; set; } = [];

    public static ClusterManifest From(GrainClassRegistry registry, IEnumerable<string> streamProviders)
    {
        var manifest = new ClusterManifest { StreamProviders = [.. streamProviders] };
        foreach (var info in registry.Classes)
        {
            var entry = new GrainClassEntry(info.ClassType.FullName!, info.ClassType.Name, info.GrainType.Value);
            foreach (var iface in info.Interfaces)
            {
                var key = CodecRegistry.NameOf(iface);
                if (!manifest.Interfaces.TryGetValue(key, out var list))
                {
                    manifest.Interfaces[key] = list = [];
                }

                list.Add(entry);
            }

            foreach (var ns in info.ImplicitStreamNamespaces)
            {
                if (!manifest.ImplicitSubscriptions.TryGetValue(ns, out var types))
                {
                    manifest.ImplicitSubscriptions[ns] = types = [];
                }

                types.Add(info.GrainType.Value);
            }
        }

        return manifest;
    }
}

/// <summary>The grain types implicitly subscribed to a stream namespace.</summary>
internal interface IImplicitSubscriberSource
{
    IReadOnlyList<GrainType> GetImplicitSubscribers(string streamNamespace);
}

/// <summary>Resolves grain interfaces to grain types from a manifest (the client side of <see cref="GrainClassRegistry"/>).</summary>
internal sealed class ManifestResolver : IGrainTypeResolver, IImplicitSubscriberSource
{
    private readonly ClusterManifest _manifest;
    private readonly ConcurrentDictionary<(Type, string?), GrainType> _resolved = new();

    public ManifestResolver(ClusterManifest manifest)
    {
        _manifest = manifest;
    }

    public GrainType ResolveGrainType(Type interfaceType, string? grainClassNamePrefix) =>
        _resolved.TryGetValue((interfaceType, grainClassNamePrefix), out var type)
            ? type
            : _resolved.GetOrAdd((interfaceType, grainClassNamePrefix), new GrainType(Choose(
                interfaceType,
                grainClassNamePrefix,
                _manifest.Interfaces.GetValueOrDefault(CodecRegistry.NameOf(interfaceType)) ?? [],
                c => c.ClassFullName,
                c => c.ClassName).GrainType));

    public IReadOnlyList<GrainType> GetImplicitSubscribers(string streamNamespace) =>
        _manifest.ImplicitSubscriptions.TryGetValue(streamNamespace, out var types) ? types.Select(t => new GrainType(t)).ToList() : [];

    /// <summary>
    /// The rules of interface resolution, shared by silos and clients: the one implementing class; or the one whose
    /// full name starts with the given prefix; or, as Orleans, the one named like the interface without its "I".
    /// </summary>
    public static T Choose<T>(Type interfaceType, string? prefix, IReadOnlyList<T> candidates, Func<T, string> fullName, Func<T, string> name)
    {
        if (candidates.Count == 0)
        {
            throw new GrainTypeResolutionException(
                $"No grain class implements {interfaceType.FullName}. Is its assembly referenced by the silo and built with the code generator (LiflCodeGen)?");
        }

        if (prefix is not null)
        {
            var matching = candidates.Where(c => fullName(c).StartsWith(prefix, StringComparison.Ordinal)).ToList();
            return matching.Count == 1
                ? matching[0]
                : throw new GrainTypeResolutionException(matching.Count == 0
                    ? $"No grain class implementing {interfaceType.Name} has a full name starting with '{prefix}'."
                    : $"Several grain classes implementing {interfaceType.Name} start with '{prefix}': {string.Join(", ", matching.Select(fullName))}.");
        }

        if (candidates.Count == 1)
        {
            return candidates[0];
        }

        var conventional = interfaceType.Name.StartsWith('I') ? interfaceType.Name[1..] : null;
        var byName = candidates.Where(c => name(c) == conventional).ToList();
        return byName.Count == 1
            ? byName[0]
            : throw new GrainTypeResolutionException(
                $"Several grain classes implement {interfaceType.Name} ({string.Join(", ", candidates.Select(fullName))}) and none is named {conventional}; pass grainClassNamePrefix to GetGrain.");
    }
}
