namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// The attention side of each deployed model, loaded once per process and shared by its sessions. Entries are keyed by
/// the weights' source and the deployment's epoch (a baseline restart bumps the epoch, so its sessions load the weights
/// afresh, as a restarted worker would) and held by the deployments that use them: deployments of the same weights
/// share an entry, and an entry goes once no deployment holds it — its deployments undeployed, or restarted into a
/// newer epoch.
/// </summary>
public static class MoeModelCache
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Entry> Models = new(StringComparer.Ordinal);

    /// <summary>
    /// The model of <paramref name="spec"/> at <paramref name="epoch"/>, loaded if this process has none, held for
    /// <paramref name="deployment"/>; whatever the deployment held of an older epoch is let go.
    /// </summary>
    public static MoeModel Get(string deployment, MoeDeploymentSpec spec, int epoch)
    {
        ArgumentException.ThrowIfNullOrEmpty(deployment);
        ArgumentNullException.ThrowIfNull(spec);
        var key = $"{spec.Source}@{epoch}";
        Entry entry;
        lock (Gate)
        {
            Release(deployment, e => e.Epoch < epoch);
            if (!Models.TryGetValue(key, out entry!))
            {
                entry = new Entry(epoch, new Lazy<MoeModel>(() => Load(spec), LazyThreadSafetyMode.ExecutionAndPublication));
                Models[key] = entry;
            }

            entry.Holders.Add(deployment);
        }

        try
        {
            return entry.Model.Value;
        }
        catch
        {
            lock (Gate)
            {
                if (Models.TryGetValue(key, out var current) && current == entry)
                {
                    Models.Remove(key);
                }
            }

            throw;
        }
    }

    /// <summary>Lets go of every model <paramref name="deployment"/> holds (it was undeployed); returns how many went from the process.</summary>
    public static int Release(string deployment)
    {
        ArgumentException.ThrowIfNullOrEmpty(deployment);
        lock (Gate)
        {
            return Release(deployment, _ => true);
        }
    }

    /// <summary>Whether <paramref name="deployment"/> holds any model in this process.</summary>
    public static bool Holds(string deployment)
    {
        lock (Gate)
        {
            return Models.Values.Any(e => e.Holders.Contains(deployment));
        }
    }

    private static int Release(string deployment, Func<Entry, bool> which)
    {
        var dropped = 0;
        foreach (var (key, entry) in Models.ToList())
        {
            if (which(entry) && entry.Holders.Remove(deployment) && entry.Holders.Count == 0)
            {
                Models.Remove(key);
                dropped++;
            }
        }

        return dropped;
    }

    private static MoeModel Load(MoeDeploymentSpec spec)
    {
        if (spec.WeightsPath is { } path)
        {
            // Sessions never run experts: the file is not needed once the attention side is read.
            var (weights, file) = MoeWeights.Load(path);
            file.Dispose();
            return new MoeModel(weights);
        }

        return new MoeModel(MoeWeights.Random(spec.Config!, spec.Seed));
    }

    /// <summary>The decoder's shape, read from the file's header when the weights are in one.</summary>
    public static MoeConfig ConfigOf(MoeDeploymentSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.WeightsPath is { } path)
        {
            using var file = SafeTensorsFile.Open(path);
            return MoeWeights.ReadConfig(file);
        }

        return spec.Config!.Validated();
    }

    private sealed class Entry(int epoch, Lazy<MoeModel> model)
    {
        public int Epoch { get; } = epoch;

        public Lazy<MoeModel> Model { get; } = model;

        /// <summary>The deployments that use the entry.</summary>
        public HashSet<string> Holders { get; } = new(StringComparer.Ordinal);
    }
}
