namespace Orleans.LIFL;

/// <summary>The name the cluster uses for a grain class (default: the class name in lower case without "Grain").</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class GrainTypeAttribute : Attribute
{
    public GrainTypeAttribute(string grainType)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(grainType);
        GrainType = grainType;
    }

    public string GrainType { get; }
}

/// <summary>How long an activation of this class may stay idle before it is collected (scale to zero).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class CollectionAgeLimitAttribute : Attribute
{
    public double Days { get; init; }

    public double Hours { get; init; }

    public double Minutes { get; init; }

    public double Seconds { get; init; }

    public TimeSpan Amount =>
        TimeSpan.FromDays(Days) + TimeSpan.FromHours(Hours) + TimeSpan.FromMinutes(Minutes) + TimeSpan.FromSeconds(Seconds);
}

/// <summary>Activations of this class are never collected for idleness (they still stop with their silo).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class KeepAliveAttribute : Attribute;
