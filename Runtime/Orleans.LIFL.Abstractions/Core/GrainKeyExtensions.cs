using System.Globalization;
using Orleans.LIFL.Invocation;

namespace Orleans.LIFL;

/// <summary>The primary key of a grain, from inside it or from a reference to it.</summary>
public static class GrainKeyExtensions
{
    /// <summary>The identity of a grain reference, or of a grain object (inside the grain).</summary>
    public static GrainId GetGrainId(this IAddressable grain) => grain switch
    {
        Grain self => self.GrainId,
        GrainReference reference => reference.GrainId,
        _ => throw new ArgumentException($"{grain.GetType().Name} is neither a grain nor a grain reference.", nameof(grain)),
    };

    public static string GetPrimaryKeyString(this IAddressable grain) => GetGrainId(grain).Key;

    public static long GetPrimaryKeyLong(this IAddressable grain) => ParseLong(GetGrainId(grain));

    public static Guid GetPrimaryKey(this IAddressable grain) => ParseGuid(GetGrainId(grain));

    /// <summary>Views a reference as another interface the same grain implements (or one of its extensions).</summary>
    public static TInterface AsReference<TInterface>(this IAddressable reference)
        where TInterface : IAddressable
    {
        var grainReference = AsReference(reference);
        return grainReference is TInterface typed ? typed : grainReference.Runtime.GrainFactory.GetGrain<TInterface>(grainReference.GrainId);
    }

    private static GrainReference AsReference(IAddressable reference) =>
        reference as GrainReference
        ?? throw new ArgumentException($"{reference.GetType().Name} is a grain object, not a grain reference; use Grain.AsReference<T>() inside a grain.", nameof(reference));

    private static long ParseLong(GrainId id) =>
        long.TryParse(id.Key, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidOperationException($"Grain {id} does not have an integer key.");

    private static Guid ParseGuid(GrainId id) =>
        Guid.TryParseExact(id.Key, "N", out var value)
            ? value
            : throw new InvalidOperationException($"Grain {id} does not have a Guid key.");
}
