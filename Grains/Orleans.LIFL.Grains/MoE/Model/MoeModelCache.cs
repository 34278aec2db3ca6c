using System.Collections.Concurrent;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// The attention side of each deployed model, loaded once per process and shared by its sessions. Entries are keyed by
/// the weights' source and the deployment's epoch: a baseline restart bumps the epoch, so its sessions load the weights
/// afresh, as a restarted worker would.
/// </summary>
public static class MoeModelCache
{
    private static readonly ConcurrentDictionary<string, Lazy<MoeModel>> Models = new(StringComparer.Ordinal);

    public static MoeModel Get(MoeDeploymentSpec spec, int epoch)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var key = $"{spec.Source}@{epoch}";
        var model = Models.GetOrAdd(key, _ => new Lazy<MoeModel>(() => Load(spec), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return model.Value;
        }
        catch
        {
            Models.TryRemove(new KeyValuePair<string, Lazy<MoeModel>>(key, model));
            throw;
        }
    }

    /// <summary>Forgets the model of every epoch before <paramref name="epoch"/> (a restart reloads it).</summary>
    public static void EvictBefore(MoeDeploymentSpec spec, int epoch)
    {
        ArgumentNullException.ThrowIfNull(spec);
        for (var e = 0; e < epoch; e++)
        {
            Models.TryRemove($"{spec.Source}@{e}", out _);
        }
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
}
