using System.Globalization;
using System.Net;

namespace Orleans.LIFL;

/// <summary>
/// A silo incarnation: the endpoint it listens on and a generation that changes every time a silo starts on that
/// endpoint, so a restarted silo is never mistaken for the one that died.
/// </summary>
public sealed class SiloAddress : IEquatable<SiloAddress>, IComparable<SiloAddress>
{
    public SiloAddress(IPEndPoint endpoint, int generation)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        Endpoint = endpoint;
        Generation = generation;
    }

    public IPEndPoint Endpoint { get; }

    public int Generation { get; }

    /// <summary>A generation number for a silo starting now: seconds since 2024-01-01 UTC, as Orleans does.</summary>
    public static int NewGeneration()
    {
        var epoch = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        return (int)(DateTime.UtcNow - epoch).TotalSeconds;
    }

    public static SiloAddress Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var at = value.LastIndexOf('@');
        if (at < 0
            || !IPEndPoint.TryParse(value[..at], out var endpoint)
            || !int.TryParse(value[(at + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var generation))
        {
            throw new FormatException($"'{value}' is not a silo address: expected 'ip:port@generation'.");
        }

        return new SiloAddress(endpoint, generation);
    }

    public bool Equals(SiloAddress? other) =>
        other is not null && Generation == other.Generation && Endpoint.Equals(other.Endpoint);

    /// <summary>True when both name the same endpoint, whatever the generation.</summary>
    public bool IsSameEndpoint(SiloAddress other) => Endpoint.Equals(other.Endpoint);

    public override bool Equals(object? obj) => Equals(obj as SiloAddress);

    public override int GetHashCode() => HashCode.Combine(Endpoint, Generation);

    public int CompareTo(SiloAddress? other)
    {
        if (other is null)
        {
            return 1;
        }

        var c = string.CompareOrdinal(Endpoint.ToString(), other.Endpoint.ToString());
        return c != 0 ? c : Generation.CompareTo(other.Generation);
    }

    public static bool operator ==(SiloAddress? left, SiloAddress? right) => left?.Equals(right) ?? right is null;

    public static bool operator !=(SiloAddress? left, SiloAddress? right) => !(left == right);

    public override string ToString() => $"{Endpoint}@{Generation.ToString(CultureInfo.InvariantCulture)}";
}
