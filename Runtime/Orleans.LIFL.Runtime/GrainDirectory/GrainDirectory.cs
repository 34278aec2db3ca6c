using System.Collections.Concurrent;

namespace Orleans.LIFL.Runtime.GrainDirectory;

/// <summary>Identifies one activation among all activations a silo ever hosts.</summary>
public readonly record struct ActivationId(long Value)
{
    private static long s_next;

    public static ActivationId NewId() => new(Interlocked.Increment(ref s_next));

    public override string ToString() => "@" + Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Where a grain's single activation lives.</summary>
public sealed record GrainAddress(GrainId GrainId, SiloAddress Silo, ActivationId ActivationId)
{
    public bool Matches(GrainAddress? other) =>
        other is not null && GrainId.Equals(other.GrainId) && Silo.Equals(other.Silo) && ActivationId.Equals(other.ActivationId);

    public override string ToString() => $"{GrainId} on {Silo}{ActivationId}";
}

/// <summary>The cluster-wide map from grain to activation, which keeps every grain to at most one activation.</summary>
public interface IGrainDirectory
{
    /// <summary>Registers <paramref name="address"/> unless another live activation is registered; returns the winner.</summary>
    ValueTask<GrainAddress> Register(GrainAddress address, Func<SiloAddress, bool> isSiloDead);

    ValueTask<GrainAddress?> Lookup(GrainId grainId);

    /// <summary>Removes the entry only if it still names this activation.</summary>
    ValueTask Unregister(GrainAddress address);

    /// <summary>Removes every entry of the given silos (they died).</summary>
    ValueTask UnregisterSilos(IReadOnlyCollection<SiloAddress> silos);
}

/// <summary>The embedded default: a directory shared by the silos of one process.</summary>
internal sealed class InMemoryGrainDirectory : IGrainDirectory
{
    private readonly ConcurrentDictionary<GrainId, GrainAddress> _entries = new();

    public int Count => _entries.Count;

    public ValueTask<GrainAddress> Register(GrainAddress address, Func<SiloAddress, bool> isSiloDead)
    {
        while (true)
        {
            var current = _entries.GetOrAdd(address.GrainId, address);
            if (ReferenceEquals(current, address) || current.Matches(address))
            {
                return new ValueTask<GrainAddress>(current);
            }

            if (!isSiloDead(current.Silo))
            {
                return new ValueTask<GrainAddress>(current);
            }

            // The registered activation's silo is gone: take its place.
            if (_entries.TryUpdate(address.GrainId, address, current))
            {
                return new ValueTask<GrainAddress>(address);
            }
        }
    }

    public ValueTask<GrainAddress?> Lookup(GrainId grainId) =>
        new(_entries.TryGetValue(grainId, out var address) ? address : null);

    public ValueTask Unregister(GrainAddress address)
    {
        if (_entries.TryGetValue(address.GrainId, out var current) && current.Matches(address))
        {
            _entries.TryRemove(new KeyValuePair<GrainId, GrainAddress>(address.GrainId, current));
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask UnregisterSilos(IReadOnlyCollection<SiloAddress> silos)
    {
        foreach (var entry in _entries)
        {
            if (silos.Contains(entry.Value.Silo))
            {
                _entries.TryRemove(entry);
            }
        }

        return ValueTask.CompletedTask;
    }
}
