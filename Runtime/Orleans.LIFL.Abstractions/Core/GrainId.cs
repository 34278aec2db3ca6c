using System.Globalization;

namespace Orleans.LIFL;

/// <summary>The name of a grain class as the cluster knows it (stable across processes and versions).</summary>
public readonly record struct GrainType
{
    public GrainType(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        Value = value;
    }

    public string Value { get; }

    public override string ToString() => Value ?? "";
}

/// <summary>
/// The identity of a grain: its type and its key. Typed keys are stored in a canonical string form
/// (Guid as 32 hex digits, integers in decimal) so that an identity means the same thing in every process.
/// </summary>
public readonly struct GrainId : IEquatable<GrainId>
{
    private readonly int _hash;

    public GrainId(GrainType type, string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (type.Value is null)
        {
            throw new ArgumentException("GrainId needs a grain type.", nameof(type));
        }

        Type = type;
        Key = key;
        _hash = HashCode.Combine(type.Value, key);
    }

    public GrainType Type { get; }

    public string Key { get; }

    public bool IsDefault => Key is null;

    public static GrainId Create(GrainType type, string key) => new(type, key);

    public static GrainId Create(GrainType type, long key) => new(type, FormatKey(key));

    public static GrainId Create(GrainType type, Guid key) => new(type, FormatKey(key));

    public static string FormatKey(long key) => key.ToString(CultureInfo.InvariantCulture);

    public static string FormatKey(Guid key) => key.ToString("N");

    /// <summary>Parses the form produced by <see cref="ToString"/>: "type/key".</summary>
    public static GrainId Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw new FormatException($"'{value}' is not a grain id: expected 'type/key'.");
        }

        return new GrainId(new GrainType(value[..slash]), value[(slash + 1)..]);
    }

    /// <summary>A hash that is the same in every process (string.GetHashCode is randomized per process).</summary>
    public uint GetStableHashCode() => StableHash.Fnv1a(Type.Value, Key);

    public bool Equals(GrainId other) =>
        _hash == other._hash && string.Equals(Key, other.Key, StringComparison.Ordinal)
        && string.Equals(Type.Value, other.Type.Value, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is GrainId other && Equals(other);

    public override int GetHashCode() => _hash;

    public static bool operator ==(GrainId left, GrainId right) => left.Equals(right);

    public static bool operator !=(GrainId left, GrainId right) => !left.Equals(right);

    public override string ToString() => IsDefault ? "(none)" : $"{Type.Value}/{Key}";
}

/// <summary>FNV-1a over UTF-16 code units: stable across processes and runs, cheap, good enough for placement.</summary>
public static class StableHash
{
    private const uint Offset = 2166136261;
    private const uint Prime = 16777619;

    public static uint Fnv1a(string a, string b)
    {
        var h = Mix(Offset, a);
        h = (h ^ '/') * Prime;
        return Mix(h, b);
    }

    public static uint Fnv1a(string a) => Mix(Offset, a);

    private static uint Mix(uint h, string s)
    {
        foreach (var c in s)
        {
            h = (h ^ (byte)c) * Prime;
            h = (h ^ (byte)(c >> 8)) * Prime;
        }

        return h;
    }
}
