namespace Orleans.LIFL.Client.Training;

/// <summary>
/// Splits a data set's example indices among simulated FL clients. Every index goes to exactly one client, no client
/// is empty, and the same arguments and seed give the same split.
/// </summary>
public static class Partitioning
{
    /// <summary>
    /// The IID split: the indices 0..<paramref name="count"/>-1 shuffled and cut into <paramref name="clients"/> parts
    /// whose sizes differ by at most one (the first <c>count % clients</c> parts have the extra index).
    /// </summary>
    public static int[][] Iid(int count, int clients, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(clients, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, clients);

        var order = new int[count];
        for (var i = 0; i < count; i++)
        {
            order[i] = i;
        }

        new Random(seed).Shuffle(order);
        var parts = new int[clients][];
        var (size, larger) = Math.DivRem(count, clients);
        var start = 0;
        for (var client = 0; client < clients; client++)
        {
            var length = size + (client < larger ? 1 : 0);
            parts[client] = order[start..(start + length)];
            start += length;
        }

        return parts;
    }

    /// <summary>
    /// The usual label-skewed split (Yurochkin et al., 2019; Li et al.'s NIID-Bench, 2021): for each class, proportions
    /// p ~ Dir(<paramref name="alpha"/>) over the clients are drawn, and the class's shuffled examples are dealt out in
    /// those proportions. A small alpha gives each
    /// client few classes; a large one approaches the IID split.
    /// </summary>
    /// <remarks>
    /// A small alpha can leave a client with nothing. Each such client then gets one example taken from the client
    /// holding the most, which keeps the split a single pass (redrawing until no client is empty may take very many
    /// draws when clients are many and alpha is small) and moves at most one example per empty client.
    /// Each client's indices come back in ascending order.
    /// </remarks>
    /// <param name="labels">The class of each example; the indices split are 0..labels.Length-1.</param>
    public static int[][] Dirichlet(ReadOnlySpan<byte> labels, int classes, int clients, double alpha, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(clients, 1);
        if (!(alpha > 0) || !double.IsFinite(alpha))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "The Dirichlet concentration must be positive and finite.");
        }

        if (labels.Length < clients)
        {
            throw new ArgumentException($"{labels.Length:N0} examples cannot give each of {clients:N0} clients at least one.", nameof(labels));
        }

        var byClass = new List<int>[classes];
        for (var c = 0; c < classes; c++)
        {
            byClass[c] = [];
        }

        for (var i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= classes)
            {
                throw new ArgumentException($"Example {i:N0} has label {labels[i]}, outside the {classes} classes.", nameof(labels));
            }

            byClass[labels[i]].Add(i);
        }

        var random = new Random(seed);
        var concentration = new double[clients];
        Array.Fill(concentration, alpha);
        var parts = new List<int>[clients];
        for (var client = 0; client < clients; client++)
        {
            parts[client] = [];
        }

        foreach (var members in byClass)
        {
            var examples = members.ToArray();
            random.Shuffle(examples);
            var proportions = DrawProportions(random, concentration);

            // Cutting at the rounded cumulative proportions hands out exactly examples.Length indices, whatever the rounding.
            var cumulative = 0.0;
            var start = 0;
            for (var client = 0; client < clients; client++)
            {
                cumulative += proportions[client];
                var end = client == clients - 1 ? examples.Length : Math.Min(examples.Length, (int)Math.Round(cumulative * examples.Length));
                if (end > start)
                {
                    parts[client].AddRange(examples.AsSpan(start, end - start));
                    start = end;
                }
            }
        }

        foreach (var empty in parts.Where(p => p.Count == 0))
        {
            var largest = parts.MaxBy(p => p.Count)!;
            empty.Add(largest[^1]);
            largest.RemoveAt(largest.Count - 1);
        }

        return [.. parts.Select(p =>
        {
            var indices = p.ToArray();
            Array.Sort(indices);
            return indices;
        })];
    }

    private static double[] DrawProportions(Random random, double[] concentration)
    {
        var proportions = MathNet.Numerics.Distributions.Dirichlet.Sample(random, concentration);
        if (!Array.TrueForAll(proportions, double.IsFinite))
        {
            // With a tiny alpha every Gamma draw can underflow to 0 and the normalized sample is NaN. The sample's limit
            // as alpha goes to 0 is all of the class at one client chosen uniformly, so use that.
            Array.Clear(proportions);
            proportions[random.Next(proportions.Length)] = 1;
        }

        return proportions;
    }
}
