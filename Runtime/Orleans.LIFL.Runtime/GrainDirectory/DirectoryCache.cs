using System.Collections.Concurrent;

namespace Orleans.LIFL.Runtime.GrainDirectory;

/// <summary>A silo's memory of where remote activations live, so most calls skip the directory.</summary>
internal sealed class DirectoryCache
{
    private const int MaxEntries = 1_000_000;
    private readonly ConcurrentDictionary<GrainId, GrainAddress> _entries = new();

    public bool TryGet(GrainId grainId, out GrainAddress address) => _entries.TryGetValue(grainId, out address!);

    public void Put(GrainAddress address)
    {
        if (_entries.Count >= MaxEntries)
        {
            _entries.Clear();
        }

        _entries[address.GrainId] = address;
    }

    public void Remove(GrainId grainId) => _entries.TryRemove(grainId, out _);

    public void RemoveSilos(IReadOnlyCollection<SiloAddress> silos)
    {
        foreach (var entry in _entries)
        {
            if (silos.Contains(entry.Value.Silo))
            {
                _entries.TryRemove(entry);
            }
        }
    }
}
