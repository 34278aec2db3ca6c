using System.Collections.Immutable;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>
/// What the planner expects of the next round, learnt from the ones before: exponentially weighted moving averages of
/// the updates that arrived at each silo, of how long they took to arrive, and of one aggregator's throughput on one
/// core. x̄ ← α·x + (1 − α)·x̄. Immutable: each observation returns a new estimator, which the job persists.
/// </summary>
/// <remarks>
/// Before anything is observed the estimator holds guesses (the selected clients spread evenly, a default window and
/// throughput); the first measurement replaces a guess rather than being averaged with it, since a guess is not a
/// sample. A silo missing from a round's arrivals counts as having had none.
/// </remarks>
[GenerateSerializer]
[Immutable]
public sealed record ArrivalEstimator
{
    public const double DefaultAlpha = 0.5;

    /// <summary>
    /// A silo whose average falls below this in a round with no arrivals there is forgotten (expects 0), so it stops
    /// getting a leaf of its own: without it a silo that once had an update would keep one for a thousand rounds.
    /// </summary>
    public const double NegligibleUpdates = 0.1;

    private ArrivalEstimator()
    {
    }

    /// <summary>The silos with a non-zero average, by name (ordinal).</summary>
    [Id(0)]
    public ImmutableArray<SiloArrivals> Silos { get; private init; } = [];

    /// <summary>The average time from a round's start to its last update.</summary>
    [Id(1)]
    public TimeSpan Window { get; private init; }

    /// <summary>The average measured throughput of one aggregator on one core.</summary>
    [Id(2)]
    public double BytesPerSecondPerCore { get; private init; }

    /// <summary>The weight of the newest observation, in (0, 1].</summary>
    [Id(3)]
    public double Alpha { get; private init; }

    /// <summary>The rounds observed so far (0: <see cref="Silos"/> and <see cref="Window"/> are still the initial guesses).</summary>
    [Id(4)]
    public int Rounds { get; private init; }

    /// <summary>The throughput measurements so far (0: <see cref="BytesPerSecondPerCore"/> is still the default).</summary>
    [Id(5)]
    public int ThroughputSamples { get; private init; }

    /// <summary>
    /// An estimator that has seen nothing: <paramref name="selectedClients"/> spread evenly over
    /// <paramref name="silos"/>, and the given window and throughput.
    /// </summary>
    public static ArrivalEstimator Initial(
        int selectedClients,
        IEnumerable<string> silos,
        TimeSpan defaultWindow,
        double defaultBytesPerSecondPerCore,
        double alpha = DefaultAlpha)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(selectedClients);
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(defaultWindow, TimeSpan.Zero);
        if (!(defaultBytesPerSecondPerCore > 0 && double.IsFinite(defaultBytesPerSecondPerCore)))
        {
            throw new ArgumentOutOfRangeException(nameof(defaultBytesPerSecondPerCore), defaultBytesPerSecondPerCore, "The default throughput must be positive and finite.");
        }

        if (!(alpha is > 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Alpha must be in (0, 1].");
        }

        var names = silos.Distinct().Order(StringComparer.Ordinal).ToArray();
        if (names.Length == 0 || names.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("The estimator needs at least one silo, each named.", nameof(silos));
        }

        var share = (double)selectedClients / names.Length;
        return new ArrivalEstimator
        {
            Silos = share > 0 ? [.. names.Select(name => new SiloArrivals(name, share))] : [],
            Window = defaultWindow,
            BytesPerSecondPerCore = defaultBytesPerSecondPerCore,
            Alpha = alpha,
        };
    }

    /// <summary>The updates a silo is expected to receive in the next round.</summary>
    public double Expected(string silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        foreach (var entry in Silos.AsSpan())
        {
            if (entry.Silo == silo)
            {
                return entry.Updates;
            }
        }

        return 0;
    }

    /// <summary>Folds in a finished round: how many updates arrived at each silo, and how long they took to arrive.</summary>
    public ArrivalEstimator Observe(IReadOnlyDictionary<string, int> arrivalsBySilo, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(arrivalsBySilo);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        foreach (var (silo, count) in arrivalsBySilo)
        {
            if (string.IsNullOrWhiteSpace(silo) || count < 0)
            {
                throw new ArgumentException($"Arrivals must be counted per named silo and not be negative ('{silo}': {count}).", nameof(arrivalsBySilo));
            }
        }

        var first = Rounds == 0;
        var names = Silos.Select(s => s.Silo).Union(arrivalsBySilo.Keys).Order(StringComparer.Ordinal);
        var silos = ImmutableArray.CreateBuilder<SiloArrivals>();
        foreach (var name in names)
        {
            var arrived = arrivalsBySilo.TryGetValue(name, out var count) && count > 0;
            var updates = first ? count : Average(count, Expected(name));
            if (arrived || updates >= NegligibleUpdates)
            {
                silos.Add(new SiloArrivals(name, updates));
            }
        }

        return this with
        {
            Silos = silos.ToImmutable(),
            Window = first ? window : TimeSpan.FromTicks((long)Math.Round(Average(window.Ticks, Window.Ticks))),
            Rounds = Rounds + 1,
        };
    }

    /// <summary>Folds in a measured throughput of one aggregator on one core, in bytes per second.</summary>
    public ArrivalEstimator ObserveThroughput(double bytesPerSecondPerCore)
    {
        if (!(bytesPerSecondPerCore > 0 && double.IsFinite(bytesPerSecondPerCore)))
        {
            throw new ArgumentOutOfRangeException(nameof(bytesPerSecondPerCore), bytesPerSecondPerCore, "A throughput must be positive and finite.");
        }

        return this with
        {
            BytesPerSecondPerCore = ThroughputSamples == 0 ? bytesPerSecondPerCore : Average(bytesPerSecondPerCore, BytesPerSecondPerCore),
            ThroughputSamples = ThroughputSamples + 1,
        };
    }

    private double Average(double sample, double average) => (Alpha * sample) + ((1 - Alpha) * average);

    public bool Equals(ArrivalEstimator? other) =>
        other is not null
        && Silos.AsSpan().SequenceEqual(other.Silos.AsSpan())
        && Window == other.Window
        && BytesPerSecondPerCore.Equals(other.BytesPerSecondPerCore)
        && Alpha.Equals(other.Alpha)
        && Rounds == other.Rounds
        && ThroughputSamples == other.ThroughputSamples;

    public override int GetHashCode() =>
        HashCode.Combine(Silos.IsDefault ? 0 : Silos.Length, Window, BytesPerSecondPerCore, Alpha, Rounds, ThroughputSamples);

    public override string ToString() =>
        $"after {Rounds} rounds: window {Window}, {BytesPerSecondPerCore:N0} B/s per core, "
        + string.Join(", ", Silos.AsSpan().ToArray().Select(s => $"{s.Silo} {s.Updates}"));
}
